"""What fnud costs next to supervisord: CLI, idle daemon, throughput."""

from __future__ import annotations

import contextlib
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.context import Bench
from bench.report import Table, ms, ratio
from bench.stacks import VENV_BIN, BenchError, FnudStack, HandStack, StackFiles, clean_env
from bench.supervisord import SupervisordStack, describe_conf, install, install_fnud
from bench.wrk import WrkResult
from supervisor.config.parse import load_config

SETTLE = 3.0  # seconds after the last status call before the idle window opens
STATUS_CALLS = 8  # per CLI, alternating
WATCH_TOML = """
[watch]
enabled = true
debounce_ms = 300
"""
GOALS = {"status": 0.6, "rss": 1.1, "cpu": 2.0, "throughput": 0.98}


@dataclass(frozen=True)
class Sample:
    cpu: float  # user + system seconds (psutil cpu_times: clock ticks)
    run: float  # seconds on a CPU, summed over the threads' schedstat (nanoseconds)
    wakeups: int  # voluntary context switches of all threads: went to sleep, woke up
    rss: int
    uss: int
    threads: int


@dataclass(frozen=True)
class Subject:
    label: str
    pid: int
    config: str
    status: list[str]  # the CLI's status command (argv)


@dataclass
class Measured:
    status: float = 0.0  # median wall time of the status command, seconds
    status_codes: str = ""
    cpu: float = 0.0
    rss: float = 0.0
    throughput: float | None = None  # req/s median over the rounds


def per_thread(pid: int) -> tuple[float, int]:
    """(seconds on a CPU, voluntary context switches), summed over the live threads:
    psutil's num_ctx_switches counts the main thread only, and cpu_times has clock-tick
    resolution, too coarse for an idle supervisord."""
    run, switches = 0.0, 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):  # a thread that just ended
            run += int((task / "schedstat").read_text().split()[0]) / 1e9
            for line in (task / "status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    switches += int(line.split()[1])
    return run, switches


def sample(pid: int) -> Sample | None:
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            times = proc.cpu_times()
            memory = proc.memory_full_info()
            run, switches = per_thread(pid)
            return Sample(float(times.user + times.system), run, switches, int(memory.rss),
                          int(memory.uss), proc.num_threads())
    except psutil.Error:
        return None


def mib(size: float | None) -> str:
    return "-" if size is None else f"{size / 2**20:.1f} MiB"


def log_requests(files: StackFiles) -> None:
    """uWSGI logs every request (a line per request into uwsgi.log), instead of the
    bench's usual `disable-logging = true`: the logging path is what is compared."""
    text = files.ini.read_text()
    files.ini.write_text(text.replace("disable-logging = true", "disable-logging = false"))


def log_master(files: StackFiles) -> None:
    log_requests(files)
    text = files.toml.read_text()
    files.toml.write_text(text.replace("[uwsgi]\n", "[uwsgi]\nlog_master = true\n", 1))


def warm_parent(daemon: int) -> int | None:
    """The daemon's warm preflight interpreter (a child running the app's python)."""
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(daemon).children():
            with contextlib.suppress(psutil.Error):
                if "def serve(" in " ".join(child.cmdline()):
                    return int(child.pid)
    return None


def fnud_status(stack: FnudStack, fnud: Path) -> list[str]:
    """The installed `fnud` script, as a user types it."""
    return [str(fnud), "-c", str(stack.files.toml), "status"]


#: what a Python CLI cannot go below, timed in the same alternation as the status commands
BASELINES = {
    "python -c pass": [str(VENV_BIN / "python"), "-c", "pass"],
    "python -c 'import click'": [str(VENV_BIN / "python"), "-c", "import click"],
}


def time_status(commands: dict[str, list[str]], calls: int) -> dict[str, tuple[float, str]]:
    """Median wall time of each command (spawn to exit), alternating between them; and
    the exit codes seen."""
    times: dict[str, list[float]] = {label: [] for label in commands}
    codes: dict[str, set[int]] = {label: set() for label in commands}
    # as installed: with bytecode caches (pip compiles site-packages; an editable fnud
    # writes its __pycache__ on first run unless PYTHONDONTWRITEBYTECODE says no, which
    # would make every fnud call compile its modules while supervisorctl's are cached)
    env = clean_env("PYTHONPATH", "PYTHONHOME", "PYTHONDONTWRITEBYTECODE")
    for argv in commands.values():  # unmeasured: writes the caches, warms the page cache
        subprocess.run(argv, capture_output=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    for _ in range(calls):
        for label, argv in commands.items():
            began = time.perf_counter()
            result = subprocess.run(argv, capture_output=True, timeout=60, env=env,
                                    stdin=subprocess.DEVNULL)
            times[label].append(time.perf_counter() - began)
            codes[label].add(result.returncode)
    return {label: (statistics.median(values), ",".join(map(str, sorted(codes[label]))))
            for label, values in times.items()}


def idle_window(
    subjects: list[Subject], seconds: float
) -> tuple[float, dict[int, tuple[Sample, Sample]]]:
    """Every daemon idle at the same time: (window seconds, first and last sample)."""
    time.sleep(SETTLE)
    first = {x.pid: sample(x.pid) for x in subjects}
    opened = time.monotonic()
    time.sleep(seconds)
    window = time.monotonic() - opened
    out: dict[int, tuple[Sample, Sample]] = {}
    for x in subjects:
        a, b = first[x.pid], sample(x.pid)
        if a is None or b is None:
            raise BenchError(f"{x.label} (pid {x.pid}) died during the idle window")
        out[x.pid] = (a, b)
    return window, out


def throughput(bench: Bench, targets: dict[str, str], pids: dict[str, int]
               ) -> tuple[dict[str, list[WrkResult]], dict[str, float]]:
    """wrk rounds, interleaved over the targets; req/s per round and the daemons' CPU
    (seconds) during their own windows."""
    s = bench.settings
    if s.warmup > 0:
        for url in targets.values():
            bench.wrk(url, s.warmup)
    round_seconds = max(1.0, round(s.seconds / s.rounds))
    results: dict[str, list[WrkResult]] = {label: [] for label in targets}
    cpu: dict[str, float] = dict.fromkeys(targets, 0.0)
    for _ in range(s.rounds):
        for label, url in targets.items():
            pid = pids.get(label)
            before = per_thread(pid)[0] if pid else 0.0
            results[label].append(bench.wrk(url, round_seconds))
            cpu[label] += (per_thread(pid)[0] - before) if pid else 0.0
    return results, cpu


def daemon_footprint(bench: Bench) -> list[Table]:
    """fnud next to supervisord, measured in this one run. Stacks,
    all started side by side, uWSGI logging every request into its log file
    (`disable-logging = false`, the bench's other sections turn it off): (1) fnud with
    the bench's fnud.toml (fnud's defaults: [health] interval 10 s, no [watch], [uwsgi]
    log_master = false); (2) the same + `[watch] enabled = true`; (3) the same as (1) with
    `[uwsgi] log_master = true`; (4) supervisord from PyPI (`pip install supervisor` into a
    venv made with fnud's own Python in a bench temp dir, deleted at the end) running the
    same two programs with fnud's flags (uwsgi `--master-fifo`, `--stats` on a unix socket,
    `--logto` straight to a file; nginx `-p PREFIX -e LOG -g 'daemon off;'`), autorestart,
    stopasgroup/killasgroup, its unix socket + RPC interface; (5) the same ini and conf
    started by hand (stdout into a log file). Rows: `status` = wall time of the CLI from
    spawn to exit (the `fnud` script of fnud installed from its wheel, built from this
    checkout, into a venv of its own, against `supervisorctl status`), median of
    8 calls alternating between the CLIs after one unmeasured call each (bytecode caches
    allowed, as installed); then every daemon idles for BENCH_IDLE seconds
    (3 s after the last status call): CPU = time on a CPU over the window, summed over the
    daemon's threads (/proc/PID/task/*/schedstat), wakeups = voluntary context switches per
    second of all its threads, RSS and USS at the end of the window (so after >= 20 s idle,
    after the status calls); throughput = wrk -t2 -c32 GET / req/s (median of the
    interleaved rounds) through each fnud stack / through the hand-started stack. Idle,
    fnud still probes the health URL every 10 s (a GET through nginx); supervisord has no
    health probe, reload gate or file watcher.
    """
    venv = bench.new_dir("venv") / "venv"
    began = time.monotonic()
    version = install(venv, bench.procs)
    installed = time.monotonic() - began
    fnud = install_fnud(bench.new_dir("fnudvenv") / "venv", bench.procs)
    supd = SupervisordStack(bench.new_files("supd"), venv, bench.procs)
    hand = HandStack(bench.new_files("hlog"), bench.procs)
    stacks: dict[str, FnudStack] = {}
    try:
        for label, prefix, extra, prepare in (
            ("fnud", "idle", "", log_requests),
            ("fnud + watch", "idlew", WATCH_TOML, log_requests),
            ("fnud log_master", "idlem", "", log_master),
        ):
            stacks[label] = bench.private_fnud(prefix, extra, prepare=prepare)
        log_requests(supd.files)
        supd.start()
        log_requests(hand.files)
        hand.start()
        tables = _measure(bench, stacks, supd, hand, version, fnud)
    finally:
        bench.problems += supd.stop()
        hand.stop()
        for stack in stacks.values():
            bench.problems += bench.stop_private(stack)
    tables[-1].notes += [
        f"supervisord {version}: pip install took {installed:.1f}s (venv in a bench temp dir,",
        "  removed at the end; BENCH_KEEP=1 keeps it); its supervisord.conf, log paths left out:",
        *(f"  {line}" for line in describe_conf()),
    ]
    return tables


def _measure(bench: Bench, stacks: dict[str, FnudStack], supd: SupervisordStack,
             hand: HandStack, version: str, fnud: Path) -> list[Table]:
    sup_label = f"supervisord {version}"
    assert supd.pid is not None
    subjects = [
        Subject(label, int(stack.status()["daemon"]["pid"]), _describe(stack),
                fnud_status(stack, fnud))
        for label, stack in stacks.items()
    ]
    subjects.append(Subject(sup_label, supd.pid, "autorestart, unix socket + RPC, 2 programs",
                            supd.ctl_argv("status")))
    measured = {x.label: Measured() for x in subjects}
    walls = time_status({**{x.label: x.status for x in subjects}, **BASELINES}, STATUS_CALLS)
    for x in subjects:
        measured[x.label].status, measured[x.label].status_codes = walls[x.label]
    rows: list[Subject] = []  # each fnud daemon, then its warm preflight interpreter
    for i, x in enumerate(subjects):
        rows.append(x)
        pid = warm_parent(x.pid) if i < len(stacks) else None
        if pid is not None:
            rows.append(Subject(f"  + its warm preflight ({x.label})", pid,
                                "the app's python, idle between checks", []))
    window, samples = idle_window(rows, bench.settings.idle)
    detail = Table(
        f"daemon_footprint: the daemon process alone, {window:.1f}s idle",
        ["daemon", "config", "status CLI", "exit", "CPU", "% of a core", "wakeups/s", "RSS",
         "USS", "threads"],
    )
    for x in rows:
        a, b = samples[x.pid]
        m = measured.setdefault(x.label, Measured())
        m.cpu, m.rss = b.run - a.run, b.rss
        detail.rows.append([
            x.label, x.config, ms(m.status) if x.status else "-", m.status_codes,
            f"{1000 * m.cpu:.1f}ms", f"{100 * m.cpu / window:.3f}%",
            f"{(b.wakeups - a.wakeups) / window:.2f}", mib(b.rss), mib(b.uss), b.threads,
        ])
    targets = {"by hand": hand.url, **{label: st.url for label, st in stacks.items()}}
    pids = {x.label: x.pid for x in subjects}
    results, cpu = throughput(bench, targets, pids)
    rps = {label: statistics.median(r.rps for r in runs) for label, runs in results.items()}
    for label in stacks:
        measured[label].throughput = rps[label]
    tput = _throughput_table(results, rps, cpu)
    summary = _summary(measured, sup_label, rps["by hand"], list(stacks)[:2])
    summary.notes.append("the floor, same alternation: " + ", ".join(
        f"{label} {ms(walls[label][0])}" for label in BASELINES
    ) + f" (fnud's python; supervisorctl runs on the same one); `fnud status` = "
        f"{ms(measured['fnud'].status)}")
    detail.notes += [
        "CPU = time on a CPU from /proc/PID/task/*/schedstat; wakeups = voluntary context",
        "  switches of all threads (/proc/PID/task/*/status); RSS/USS at the window's end",
    ]
    return [summary, detail, tput]


def _describe(stack: FnudStack) -> str:
    config = load_config(stack.files.toml)
    parts = [f"health {config.health.interval:g}s"]
    parts.append("watch" if config.watch.enabled else "no watch")
    parts.append("log_master" if config.uwsgi.log_master else "direct log")
    return ", ".join(parts)


def _summary(measured: dict[str, Measured], sup: str, hand_rps: float,
             fnuds: list[str]) -> Table:
    table = Table(
        "footprint: fnud / supervisord, side by side",
        ["row", *fnuds, sup, *(f"{f} / supervisord" for f in fnuds), "goal"],
    )
    getters: list[tuple[str, str, Callable[[Measured], float | None], Callable[..., str]]] = [
        ("`status` wall time (CLI)", "status", lambda m: m.status, ms),
        ("daemon RSS after idle", "rss", lambda m: m.rss, mib),
        ("daemon CPU, idle window (fnud probes every 10 s)", "cpu", lambda m: m.cpu,
         lambda v: f"{1000 * v:.1f}ms"),
    ]
    for name, goal, get, show in getters:
        values = [get(measured[f]) for f in fnuds]
        base = get(measured[sup])
        table.rows.append([name, *(show(v) for v in values), show(base),
                           *(ratio(v, base) for v in values), f"<= {GOALS[goal]:g}x"])
    fnud_tput = [measured[f].throughput for f in fnuds]
    table.rows.append([
        "throughput, managed / by hand (log to a file)",
        *(f"{v:,.0f} req/s" if v else "-" for v in fnud_tput), "-",
        *(ratio(v, hand_rps) for v in fnud_tput), f">= {GOALS['throughput']:g}",
    ])
    table.notes.append(f"by hand: {hand_rps:,.0f} req/s; the throughput ratio is against it, "
                       "not against supervisord")
    return table


def _throughput_table(results: dict[str, list[WrkResult]], rps: dict[str, float],
                      cpu: dict[str, float]) -> Table:
    table = Table(
        "footprint throughput: GET /, every request logged to uwsgi.log",
        ["target", "req/s", "rounds' req/s", "/ by hand", "non-2xx", "socket errors",
         "daemon CPU under load"],
    )
    hand = rps["by hand"]
    for label, runs in results.items():
        seconds = sum(r.seconds for r in runs)
        spread = f"{min(r.rps for r in runs):,.0f}-{max(r.rps for r in runs):,.0f}"
        load = "-" if label == "by hand" else (
            f"{cpu[label]:.2f}s" + (f" ({100 * cpu[label] / seconds:.1f}%)" if seconds else "")
        )
        table.rows.append([label, rps[label], spread, ratio(rps[label], hand),
                           sum(r.non_2xx for r in runs), sum(r.socket_errors for r in runs),
                           load])
    for label, runs in results.items():
        if label != "by hand":
            per_round = [a.rps / b.rps for a, b in zip(runs, results["by hand"], strict=True)
                         if b.rps]
            table.notes.append(
                f"{label} / by hand per round (the rounds run one after the other, so each "
                f"pair shares the machine's load): median "
                f"{statistics.median(per_round):.2f}x; " + ", ".join(f"{r:.2f}" for r in per_round)
            )
    table.notes.append("fnud log_master: [uwsgi] log_master = true (--logto --log-master: "
                       "the price of rename rotation)")
    return table

