"""What fnud costs in throughput, next to the same stack by hand and flask run."""

from __future__ import annotations

import statistics

import psutil

from bench.context import Bench
from bench.report import Table, ms, ratio, secs
from bench.stacks import Target
from bench.wrk import WrkResult


def _cpu_seconds(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    return float(times.user + times.system)


def throughput(bench: Bench) -> list[Table]:
    """GET / of example/app.py with wrk -t2 -c32 (keep-alive) on 127.0.0.1 against:
    (1) nginx -> uWSGI started and supervised by fnud (`fnud start`, detached daemon);
    (2) the same uwsgi.ini and nginx.conf started by hand (`uwsgi --ini` + `nginx -g
    'daemon off;'`, no fnud); (3) `flask run --with-threads` (Werkzeug dev server, request
    log to a file). uWSGI: 4 processes x 2 threads, lazy-apps, disable-logging; nginx: 2
    workers, access_log off. All three run all the time; each gets an unmeasured warm-up,
    then BENCH_SECONDS of load split into BENCH_ROUNDS windows, interleaved (hand, fnud,
    flask, hand, fnud, ...) so that a burst of noise from other processes on the shared
    machine does not land on one target only. req/s, p50, p90 and p99 are the median over
    the rounds (the rounds' req/s range is shown), max the worst round's max. "failed" =
    HTTP status >= 400 plus socket errors, summed; latencies are wrk's (completed requests
    only). "start" is the wall time from launch until a request through the stack
    succeeds (for fnud: the `fnud start` command).
    """
    s = bench.settings
    fnud = bench.fnud_stack()
    targets: list[Target] = [fnud, bench.hand_stack(), bench.flask_dev()]
    order = [targets[1], targets[0], targets[2]]  # fnud between the other two
    daemon_pid = fnud.status().get("daemon", {}).get("pid")
    if s.warmup > 0:
        for target in order:
            bench.wrk(target.url, s.warmup)
    round_seconds = max(1.0, round(s.seconds / s.rounds))
    results: dict[str, list[WrkResult]] = {t.label: [] for t in targets}
    daemon_cpu = 0.0
    for _ in range(s.rounds):
        for target in order:
            before = _cpu_seconds(daemon_pid)
            results[target.label].append(bench.wrk(target.url, round_seconds))
            after = _cpu_seconds(daemon_pid)
            if target is fnud and before is not None and after is not None:
                daemon_cpu += after - before

    def med(label: str, attr: str) -> float:
        return float(statistics.median(getattr(r, attr) for r in results[label]))

    table = Table(
        f"throughput: GET / through each stack ({s.rounds} rounds x {round_seconds:g}s)",
        ["target", "req/s", "rounds' req/s", "p50", "p90", "p99", "max", "requests",
         "non-2xx", "socket errors", "start"],
    )
    for target in targets:
        runs = results[target.label]
        spread = f"{min(r.rps for r in runs):,.0f}-{max(r.rps for r in runs):,.0f}"
        table.rows.append([
            target.label, med(target.label, "rps"), spread, ms(med(target.label, "p50")),
            ms(med(target.label, "p90")), ms(med(target.label, "p99")),
            ms(max(r.max for r in runs)), sum(r.requests for r in runs),
            sum(r.non_2xx for r in runs), sum(r.socket_errors for r in runs),
            secs(target.start_seconds),
        ])
    f, h, d = "fnud", "by hand", "flask run"
    per_round = [a.rps / b.rps for a, b in zip(results[f], results[h], strict=True) if b.rps]
    table.notes += [
        f"ratio req/s  fnud/by hand = {ratio(med(f, 'rps'), med(h, 'rps'))}   fnud/flask run = "
        f"{ratio(med(f, 'rps'), med(d, 'rps'))}   (fnud/by hand per round: "
        + ", ".join(f"{x:.2f}" for x in per_round) + ")",
        f"ratio p99    fnud/by hand = {ratio(med(f, 'p99'), med(h, 'p99'))}   fnud/flask run = "
        f"{ratio(med(f, 'p99'), med(d, 'p99'))}",
    ]
    if daemon_pid is not None:
        window = sum(r.seconds for r in results[f]) or s.seconds
        table.notes.append(
            f"fnud daemon (pid {daemon_pid}) CPU during the fnud windows: {daemon_cpu:.2f}s "
            f"in {window:.1f}s ({100 * daemon_cpu / window:.1f}% of one core)"
        )
    return [table]
