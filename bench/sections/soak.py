"""The chaos soak, for BENCH_SOAK seconds with a random seed (printed: `make soak SEED=N`
replays it)."""

from __future__ import annotations

import os
import random

from bench.context import Bench
from bench.report import Table
from testkit.soak import wrk
from testkit.soak.run import Soak, SoakFailure


def soak(bench: Bench) -> list[Table]:
    """One stack of its own (releases behind a symlink, [watch] on, the log dir on a
    4 MiB tmpfs when root) under wrk -t2 -c32 for the whole run and 4 paced client
    threads whose every request is kept. A seeded random sequence of steps: every kind
    once, then random ones: good, broken (syntax error), unhealthy (500 on the health
    path) and crashing releases through the release symlink, fnud rollback, SIGHUP, saves
    under [watch], reopen-logs, kill -9 of a worker, of the uWSGI master, of the nginx
    master, of the daemon (then fnud start) also during a settle, SIGSTOP/SIGCONT of a
    worker, a full log disk, 50 clients on the control socket. After each step the stack
    must be quiet and answer what the model says. "bound" = requests in flight at the
    kills (the load client's 4 threads; wrk's 32 connections)."""
    seconds = float(os.environ.get("BENCH_SOAK", "120"))
    seed = random.SystemRandom().randrange(10**6)
    table = Table(f"soak: seed {seed}, {seconds:g} s", ["step kind", "steps", "failed",
                                                       "bound"])
    try:
        report = Soak(seed, seconds, say=lambda line: None).run(
            wrk.run if wrk.available() else None
        )
    except SoakFailure as exc:
        bench.problems.append(f"soak: {exc}")
        table.notes.append(f"FAILED: {exc}")
        return [table]
    for kind, (failed, bound) in sorted(report.failed_by_kind.items()):
        count = sum(1 for s in report.steps if s.kind == kind)
        table.rows.append([kind, count, failed, bound])
    table.notes += [
        f"{len(report.steps)} steps in {report.seconds:.0f} s; load client: "
        f"{report.requests:,} requests, {report.failed} failed",
        f"wrk -c32: {report.wrk[0]:,} requests, {report.wrk[1]} failed (bound {report.wrk[2]})",
        f"daemon: {report.fds[0]} -> {report.fds[1]} descriptors, RSS "
        f"{report.rss[0] / 2**20:.1f} -> {report.rss[1] / 2**20:.1f} MiB",
    ]
    return [table]
