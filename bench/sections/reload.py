"""What a reload costs the clients, fnud's gated reload vs the user's old fifo."""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.context import Bench
from bench.report import Table, ms, ratio
from bench.stacks import ReloadOutcome
from bench.wrk import WrkResult

LEAD = 1.0  # seconds of load before the first reload
TAIL = 1.0  # seconds of load after the last reload has completed


@dataclass(frozen=True)
class Window:
    label: str
    stack: str
    load: WrkResult
    reloads: list[ReloadOutcome]


def _under_load(
    bench: Bench, url: str, action: Callable[[], ReloadOutcome]
) -> tuple[WrkResult, list[ReloadOutcome]]:
    """wrk for the whole window; ``action`` started every ``interval`` seconds."""
    s = bench.settings
    bound = LEAD + s.reloads * (s.interval + 90) + 10
    run = bench.wrk_background(url, bound)
    outcomes: list[ReloadOutcome] = []
    try:
        time.sleep(LEAD)
        first = time.monotonic()
        for i in range(s.reloads):
            delay = first + i * s.interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            outcomes.append(action())
        time.sleep(TAIL)
    except BaseException:
        bench.procs.stop(run.child, timeout=2)
        raise
    return run.finish(), outcomes


def _reload_times(outcomes: list[ReloadOutcome]) -> tuple[float | None, float | None]:
    times = [o.seconds for o in outcomes if o.seconds is not None]
    if not times:
        return None, None
    return statistics.median(times), max(times)


def reload_under_load(bench: Bench) -> list[Table]:
    """wrk -t2 -c32 on GET / through nginx for a window in which BENCH_RELOADS reloads
    start every BENCH_RELOAD_INTERVAL seconds (the next one never before the previous one
    is complete; 1 s of load before the first and after the last), next to a steady
    window of BENCH_SECONDS on the same stack with no reload. Kinds: (a) `fnud reload
    --app` through the CLI on the fnud stack, in `[uwsgi] reload = "chain"` mode to compare
    like for like with (b) (preflight import, then chain reload; the reload time is the
    CLI's wall time; the generations section measures the default generation mode);
    (b) `c` (chain reload) written raw to the master fifo of the hand-started uWSGI, the
    user's old `echo c > fifo`; (c) `r` (graceful reload) on the same fifo. For (b) and
    (c) the reload time runs from the write until every worker PID is new, accepting and
    has the app loaded (polled on the uWSGI stats socket every 20 ms). "failed" = HTTP
    status >= 400 plus socket errors (connect, read, write, timeout > 10 s). nginx is
    never reloaded here.
    """
    fnud = bench.fnud_stack()
    hand = bench.hand_stack()
    windows: list[Window] = []

    def steady(stack: str, url: str) -> None:
        windows.append(Window("steady, no reload", stack, bench.wrk(url), []))

    def reloads(stack: str, label: str, url: str, action: Callable[[], ReloadOutcome]) -> None:
        load, outcomes = _under_load(bench, url, action)
        windows.append(Window(label, stack, load, outcomes))

    before = fnud.worker_pids()
    steady("fnud", fnud.url)
    reloads("fnud", "(a) fnud reload --app, chain", fnud.url, fnud.reload_app)
    after = fnud.worker_pids()
    steady("by hand", hand.url)
    reloads("by hand", "(b) c on master fifo", hand.url, lambda: hand.raw_reload("c"))
    reloads("by hand", "(c) r on master fifo", hand.url, lambda: hand.raw_reload("r"))

    table = Table(
        "reload under load",
        ["stack", "window", "secs", "reloads ok", "requests", "req/s", "failed", "p50", "p99",
         "max", "reload med", "reload max"],
    )
    for w in windows:
        med, top = _reload_times(w.reloads)
        ok = f"{sum(o.ok for o in w.reloads)}/{len(w.reloads)}" if w.reloads else "-"
        failed = str(w.load.non_2xx) if not w.load.socket_errors else (
            f"{w.load.failed} ({w.load.non_2xx} non-2xx, {w.load.errors_text()})"
        )
        table.rows.append([
            w.stack, w.label, f"{w.load.seconds:.1f}", ok, w.load.requests, w.load.rps, failed,
            ms(w.load.p50), ms(w.load.p99), ms(w.load.max), ms(med), ms(top),
        ])

    steady_of = {w.stack: w.load for w in windows if not w.reloads}
    for w in windows:
        if not w.reloads:
            continue
        base = steady_of[w.stack]
        table.notes.append(
            f"{w.label:<22} vs steady: p99 {ratio(w.load.p99, base.p99)}, max "
            f"{ratio(w.load.max, base.max)}, req/s {ratio(w.load.rps, base.rps)}, "
            f"failed {w.load.failed} of {w.load.requests:,}"
        )
    fnud_window = next(w for w in windows if w.label.startswith("(a)"))
    daemon_said = [
        float(m.group(1)) for o in fnud_window.reloads
        if (m := re.match(r"reloaded in ([\d.]+)s", o.detail))
    ]
    if daemon_said:
        table.notes.append(
            f"fnud reload: duration reported by the daemon median "
            f"{statistics.median(daemon_said):.1f}s, max {max(daemon_said):.1f}s "
            f"(the CLI's wall time above adds the client's start-up)"
        )
    if fnud_window.reloads and fnud_window.reloads[-1].detail:
        table.notes.append(f"fnud reload, last CLI line: {fnud_window.reloads[-1].detail}")
    if before and after and before & after:
        table.notes.append(f"fnud: workers not replaced by the reloads: {sorted(before & after)}")
    for w in windows:
        for i, o in enumerate(w.reloads, 1):
            if not o.ok:
                message = f"{w.label} #{i} FAILED: {o.detail}"
                table.notes.append(message)
                bench.problems.append(message)
    return [table]
