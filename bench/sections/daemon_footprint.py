"""Issue 8: what the fnud daemon itself costs while nothing happens, next to supervisord."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.context import Bench
from bench.report import Table, ratio
from bench.stacks import BenchError
from bench.supervisord import SupervisordStack, describe_conf, install
from supervisor.config import load_config

SETTLE = 3.0  # seconds after the last start before the idle window opens
WATCH_TOML = """
[watch]
enabled = true
debounce_ms = 300
"""


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


def daemon_footprint(bench: Bench) -> list[Table]:
    """Each daemon's own process only (not nginx, not uWSGI), all idle at the same time
    for one window of BENCH_IDLE seconds (no request from the bench; 3 s after the last
    start): CPU = time on a CPU over the window, summed over the daemon's threads
    (/proc/PID/task/*/schedstat, nanoseconds), next to psutil's cpu_times (user + system)
    delta; wakeups = voluntary context switches per second, summed over the threads; RSS
    and USS (memory only this process holds) at the end of the window. Daemons: (1) fnud
    on a fresh private stack with the bench's fnud.toml (no [watch], fnud's defaults
    otherwise); (2) fnud with `[watch] enabled = true` (the example config's setting: a
    watchdog inotify observer thread on the app dir, 300 ms debounce); (3) the shared fnud
    daemon if an earlier section started it (after the throughput and reload load);
    (4) supervisord from PyPI (`pip install supervisor` into a venv made with fnud's own
    Python in a bench temp dir, deleted at the end) running the same two programs: uwsgi
    with the same ini and fnud's flags (--master-fifo, --stats on a unix socket, --logto
    ... --log-master), nginx with `-p PREFIX -e LOG -g 'daemon off;'`; autorestart,
    stopasgroup/killasgroup, its unix
    socket and RPC interface (for supervisorctl). Idle, fnud still works: a health probe
    (a GET through nginx) every [health] interval, it follows uwsgi.log and nginx.log
    (a read every 0.1 s each) and, with [watch], the observer thread; supervisord only waits
    on its children's pipes and its socket (1 s poll timeout): no health probe, no reload
    gate, no file watcher.
    """
    s = bench.settings
    venv = bench.new_dir("venv") / "venv"
    began = time.monotonic()
    version = install(venv, bench.procs)
    installed = time.monotonic() - began
    supervisord = SupervisordStack(bench.new_files("supd"), venv, bench.procs)
    try:
        plain = bench.private_fnud("idle")
        watched = bench.private_fnud("idlew", WATCH_TOML)
        supervisord.start()
        subjects = [
            Subject("fnud", int(plain.status()["daemon"]["pid"]),
                    "bench fnud.toml: health probe, no [watch]"),
            Subject("fnud + watch", int(watched.status()["daemon"]["pid"]),
                    "same + [watch] enabled"),
        ]
        shared = bench.shared_fnud
        if shared is not None:
            subjects.append(Subject("fnud (shared)", int(shared.status()["daemon"]["pid"]),
                                    "bench fnud.toml, after the earlier sections' load"))
        assert supervisord.pid is not None
        subjects.append(Subject(f"supervisord {version}", supervisord.pid,
                                "autorestart, unix socket + RPC, 2 programs"))
        time.sleep(SETTLE)
        first = {x.pid: sample(x.pid) for x in subjects}
        opened = time.monotonic()
        time.sleep(s.idle)
        window = time.monotonic() - opened
        last = {x.pid: sample(x.pid) for x in subjects}
    finally:
        bench.problems += supervisord.stop()
    for stack in (plain, watched):
        bench.problems += bench.stop_private(stack)

    table = Table(
        f"daemon_footprint: {window:.1f}s idle, the daemon process alone",
        ["daemon", "config", "CPU", "% of a core", "cpu_times", "wakeups/s", "RSS", "USS",
         "threads"],
    )
    cpu: dict[str, float] = {}
    rss: dict[str, float] = {}
    for x in subjects:
        a, b = first[x.pid], last[x.pid]
        if a is None or b is None:
            raise BenchError(f"{x.label} (pid {x.pid}) died during the idle window")
        cpu[x.label] = b.run - a.run
        rss[x.label] = b.rss
        table.rows.append([
            x.label, x.config, f"{1000 * (b.run - a.run):.1f}ms",
            f"{100 * (b.run - a.run) / window:.3f}%", f"{b.cpu - a.cpu:.2f}s",
            f"{(b.wakeups - a.wakeups) / window:.1f}", mib(b.rss), mib(b.uss), b.threads,
        ])
    sup = subjects[-1].label
    for x in subjects[:-1]:
        table.notes.append(
            f"{x.label:<14} / supervisord: CPU {ratio(cpu[x.label], cpu[sup])}, "
            f"RSS {ratio(rss[x.label], rss[sup])}"
        )
    for label, stack in (("fnud", plain), ("fnud + watch", watched)):
        config = load_config(stack.files.toml)
        health, watch = config.health, config.watch
        table.notes.append(
            f"{label} effective config: [health] interval {health.interval:g}s timeout "
            f"{health.timeout:g}s failures {health.failures}; [watch] enabled "
            f"{str(watch.enabled).lower()}, debounce_ms {watch.debounce_ms}; [metrics] "
            f"listen {config.metrics.listen or 'off'}"
        )
    tick = 1 / os.sysconf("SC_CLK_TCK")
    table.notes += [
        "CPU = time on a CPU from /proc/PID/task/*/schedstat (ns); cpu_times = psutil's",
        f"  user + system, counted in clock ticks of {tick * 1000:g} ms (too coarse here)",
        f"supervisord {version}: pip install took {installed:.1f}s (venv in a bench temp dir,",
        "  removed at the end; BENCH_KEEP=1 keeps it); its supervisord.conf, log paths left out:",
        *(f"  {line}" for line in describe_conf()),
    ]
    return [table]
