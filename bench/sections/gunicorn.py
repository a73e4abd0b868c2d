"""gunicorn (sync and gthread workers) beside uWSGI under fnud, in one run: throughput,
and generation reloads under wrk."""

from __future__ import annotations

import shutil
import statistics
import sys
from dataclasses import dataclass

from bench.context import Bench
from bench.observe import Timed
from bench.procs import free_port
from bench.report import Table, ms, ratio
from bench.sections.generations_load import WrkReloads, reloads_under_wrk
from bench.stacks import EXAMPLE_APP, FnudStack, StackFiles
from bench.wrk import WrkResult
from testkit import stackfiles

SETTLE = 2.0  # [reload] settle of every stack here: the settle is not what is measured

GUNICORN_TOML = """\
[fnud]
runtime_dir = "run"
log_dir = "log"
stop_timeout = 20.0
start_timeout = 60.0
allow_root = true  # the bench runs as root in the dev container

[gunicorn]
app = "app:app"
chdir = "app"
python = "{python}"
bind = "127.0.0.1:{app_port}"
workers = {workers}
threads = {threads}
conf = "gunicorn.conf.py"

[nginx]
conf = "nginx.conf"
reload_timeout = 15.0

[health]
url = "http://127.0.0.1:{http_port}/health"

[reload]
settle = {settle}
"""


@dataclass(frozen=True)
class Server:
    label: str
    workers: int
    threads: int  # gunicorn: 1 means sync workers
    gunicorn: bool = True
    conf: str = ""  # appended to the user's gunicorn.conf.py


def gunicorn_files(
    bench: Bench, prefix: str, workers: int, threads: int, settle: float, conf: str = ""
) -> StackFiles:
    """A gunicorn stack's files in a bench dir: example/app.py under `python -m gunicorn`
    from the bench's own interpreter, nginx proxying HTTP to its bind."""
    root = bench.new_dir(prefix)
    files = StackFiles(root, free_port(), free_port(), workers, threads)
    (root / "app").mkdir()
    shutil.copy(EXAMPLE_APP, root / "app" / "app.py")
    files.gunicorn_conf.write_text(stackfiles.gunicorn_conf(conf))
    files.nginx_conf.write_text(stackfiles.gunicorn_nginx_conf(files.http_port, files.uwsgi_port))
    files.toml.write_text(GUNICORN_TOML.format(
        python=sys.executable, app_port=files.uwsgi_port, http_port=files.http_port,
        workers=workers, threads=threads if threads > 1 else 0, settle=float(settle),
    ))
    return files


def start(bench: Bench, server: Server, settle: float = SETTLE) -> FnudStack:
    """A private fnud stack running ``server``."""
    if not server.gunicorn:
        return bench.private_fnud("gu-uwsgi", processes=server.workers, settle=settle)
    prefix = "gu-" + server.label.split()[1]
    return bench.private_stack(
        gunicorn_files(bench, prefix, server.workers, server.threads, settle, server.conf)
    )


SERVERS = [
    Server("uWSGI 4x2", 4, 2, gunicorn=False),
    Server("gunicorn sync 4", 4, 1),
    Server("gunicorn gthread 4x2", 4, 2),
]


def gunicorn(bench: Bench) -> list[Table]:
    """The same example app under fnud with each app server, nginx proxying to it:
    uWSGI (the bench's ini: 4 processes x 2 threads, lazy-apps, request logging off),
    gunicorn with 4 sync workers, gunicorn with 4 gthread workers x 2 threads (gunicorn
    logs every answer: fnud counts answers and 5xx from its access log). Throughput: GET /
    with wrk -t2 -c32 (keep-alive to nginx), BENCH_SECONDS split into BENCH_ROUNDS
    windows interleaved over the three stacks after an unmeasured warm-up; req/s and
    latencies are the median over the rounds, max the worst. Reloads: on the same stacks
    ([reload] settle = 2 s), a steady window of BENCH_SECONDS, then BENCH_GEN_RELOADS
    `fnud reload --app` back to back under wrk -t2 -c32; "switch" = command -> the new
    generation serving (from the CLI's progress lines), "CLI" = its wall time with the
    settle and the old generation's stop. "failed" = HTTP status >= 400 plus socket
    errors.
    """
    s = bench.settings
    stacks = {server.label: start(bench, server) for server in SERVERS}
    if s.warmup > 0:
        for stack in stacks.values():
            bench.wrk(stack.url, s.warmup)
    round_seconds = max(1.0, round(s.seconds / s.rounds))
    results: dict[str, list[WrkResult]] = {label: [] for label in stacks}
    for _ in range(s.rounds):
        for label, stack in stacks.items():
            results[label].append(bench.wrk(stack.url, round_seconds))
    tables = [_throughput_table(results, s.rounds, round_seconds)]
    reload_rows = []
    for label, stack in stacks.items():
        reload_rows.append((label, reloads_under_wrk(bench, stack)))
    tables.append(_reload_table(reload_rows, s.gen_reloads))
    for stack in stacks.values():
        bench.problems += bench.stop_private(stack)
    return tables


def _throughput_table(
    results: dict[str, list[WrkResult]], rounds: int, seconds: float
) -> Table:
    def med(label: str, attr: str) -> float:
        return float(statistics.median(getattr(r, attr) for r in results[label]))

    table = Table(
        f"throughput: GET / through nginx under fnud ({rounds} rounds x {seconds:g}s)",
        ["app server", "req/s", "rounds' req/s", "p50", "p90", "p99", "max", "requests",
         "failed"],
    )
    for label, runs in results.items():
        table.rows.append([
            label, med(label, "rps"),
            f"{min(r.rps for r in runs):,.0f}-{max(r.rps for r in runs):,.0f}",
            ms(med(label, "p50")), ms(med(label, "p90")), ms(med(label, "p99")),
            ms(max(r.max for r in runs)), sum(r.requests for r in runs),
            sum(r.failed for r in runs),
        ])
    base = SERVERS[0].label
    table.notes.append("ratio req/s to " + base + ": " + ", ".join(
        f"{label} {ratio(med(label, 'rps'), med(base, 'rps'))}"
        for label in results if label != base
    ))
    return table


def _switch(run: Timed) -> float | None:
    return run.at(" serving; ")


def _reload_table(rows: list[tuple[str, WrkReloads]], reloads: int) -> Table:
    table = Table(
        f"{reloads} generation reloads back to back under wrk -t2 -c32, next to a steady "
        "window",
        ["app server", "steady req/s", "reloads ok", "requests", "req/s", "failed", "p99",
         "max", "switch med", "switch max", "CLI med"],
    )
    for label, outcome in rows:
        runs, load, steady = outcome.runs, outcome.load, outcome.steady
        switches = [t for t in (_switch(r) for r in runs) if t is not None]
        table.rows.append([
            label, steady.rps, f"{sum(r.code == 0 for r in runs)}/{len(runs)}",
            load.requests, load.rps, load.failed, ms(load.p99), ms(load.max),
            ms(statistics.median(switches) if switches else None),
            ms(max(switches, default=None)),
            ms(statistics.median(r.seconds for r in runs) if runs else None),
        ])
    table.notes.append("failed: the goal is 0 for every app server")
    return table
