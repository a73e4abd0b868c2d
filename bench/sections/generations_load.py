"""The generations section under wrk -c32: generation reloads back to back, and kill -9
of each master with the sockets held by fnud."""

from __future__ import annotations

import os
import re
import signal
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.context import Bench
from bench.observe import Timed, timed_cli
from bench.report import Table, ms, ratio
from bench.sections.fault_recovery import unhealthy
from bench.stacks import FnudStack, http_ok, tail
from bench.wrk import WrkResult

LEAD = 1.0  # seconds of wrk before the first reload / the kill
TAIL = 1.0  # seconds of wrk after the last reload / recovery
RECOVERY_TIMEOUT = 60.0
DISPLAY = {"uwsgi": "uWSGI", "gunicorn": "gunicorn", "nginx": "nginx"}


class NginxErrors:
    """nginx's [error] lines written to the stack's nginx.log since this was made."""

    def __init__(self, stack: FnudStack) -> None:
        self.path: Path = stack.files.log / "nginx.log"
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def since(self) -> str:
        """'upstream prematurely closed connection ... x3; ...' or 'none'."""
        if not self.path.exists():
            return "none"
        with open(self.path, "rb") as log:
            log.seek(self.offset)
            text = log.read().decode(errors="replace")
        kinds: Counter[str] = Counter()
        for line in text.splitlines():
            found = re.search(r"\[error\] \d+#\d+: (?:\*\d+ )?([^,]+)", line)
            if found:
                kinds[found.group(1).strip()] += 1
        return "; ".join(f"{k} x{n}" for k, n in kinds.most_common(3)) or "none"


def _failed(load: WrkResult) -> str:
    if not load.socket_errors:
        return f"{load.non_2xx:,}"
    return f"{load.failed:,} ({load.non_2xx} non-2xx, {load.errors_text()})"


@dataclass
class WrkReloads:
    steady: WrkResult
    load: WrkResult
    runs: list[Timed]
    reloads: int
    nginx_errors: str = ""

    def table(self) -> Table:
        ok = sum(r.code == 0 for r in self.runs)
        table = Table(
            f"{self.reloads} generation reloads back to back under wrk -t2 -c32, 4 workers",
            ["window", "secs", "reloads ok", "requests", "req/s", "failed", "p50", "p99", "max",
             "reload med", "reload max"],
        )
        for label, load, runs in (("steady, no reload", self.steady, []),
                                  ("fnud reload --app x N", self.load, self.runs)):
            times = [r.at(" serving; ") for r in runs]
            known = [t for t in times if t is not None]
            table.rows.append([
                label, f"{load.seconds:.1f}", f"{ok}/{len(runs)}" if runs else "-",
                load.requests, load.rps, _failed(load), ms(load.p50), ms(load.p99),
                ms(load.max), ms(statistics.median(known) if known else None),
                ms(max(known, default=None)),
            ])
        fulls = [r.seconds for r in self.runs]
        table.notes += [
            f"reloads vs steady: p99 {ratio(self.load.p99, self.steady.p99)}, max "
            f"{ratio(self.load.max, self.steady.max)}, req/s "
            f"{ratio(self.load.rps, self.steady.rps)}; failed {self.load.failed} of "
            f"{self.load.requests:,} (goal: 0)",
            "reload = command -> generation N serving (settle not counted); the CLI's wall "
            f"time incl. settle and retirement: median {ms(statistics.median(fulls))}",
            f"nginx error log during the reloads: {self.nginx_errors}",
        ]
        return table


def reloads_under_wrk(bench: Bench, stack: FnudStack) -> WrkReloads:
    s = bench.settings
    steady = bench.wrk(stack.url)
    errors = NginxErrors(stack)
    run = bench.wrk_background(stack.url, LEAD + s.gen_reloads * 300 + TAIL + 10)
    runs: list[Timed] = []
    try:
        time.sleep(LEAD)
        for i in range(s.gen_reloads):
            runs.append(timed_cli(stack, "reload", "--app"))
            if runs[-1].code != 0:
                bench.problems.append(f"generations: reload #{i + 1} under wrk exit "
                                      f"{runs[-1].code}: {runs[-1].last()}")
        time.sleep(TAIL)
    except BaseException:
        bench.procs.stop(run.child, timeout=2)
        raise
    load = run.finish()
    return WrkReloads(steady, load, runs, s.gen_reloads, errors.since())


@dataclass
class KillOutcome:
    label: str
    recovered: float | None  # seconds from the kill
    load: WrkResult | None
    detail: str
    nginx_errors: str = field(default="")

    def failed_text(self) -> str:
        return "-" if self.load is None else _failed(self.load)


def _whole(stack: FnudStack, program: str, victim: int, processes: int) -> str:
    """'' when the stack serves whole with ``victim`` replaced, else what is missing."""
    if not http_ok(stack.url, timeout=2.0):
        return "GET / through nginx fails"
    try:
        state = stack.status()
    except ValueError:
        return "no status"
    missing = unhealthy(state, processes)
    if missing:
        return missing
    pid = int(state["programs"][program].get("pid") or 0)
    return f"{program} master {victim} still listed" if pid == victim else ""


def kill_master(bench: Bench, stack: FnudStack, program: str) -> KillOutcome:
    """kill -9 of ``program``'s master under wrk -c32; how long until the stack is whole."""
    label = f"{DISPLAY.get(program, program)} master"
    processes = stack.files.processes
    before = stack.status()
    if unhealthy(before, processes):
        return KillOutcome(label, None, None, f"not whole before: {unhealthy(before, processes)}")
    victim = int(before["programs"][program]["pid"])
    errors = NginxErrors(stack)
    run = bench.wrk_background(stack.url, LEAD + RECOVERY_TIMEOUT + TAIL + 10)
    recovered = None
    missing = ""
    try:
        time.sleep(LEAD)
        killed = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        while time.monotonic() - killed < RECOVERY_TIMEOUT:
            missing = _whole(stack, program, victim, processes)
            if not missing:
                recovered = time.monotonic() - killed
                break
            time.sleep(0.02)
        time.sleep(TAIL)
    except BaseException:
        bench.procs.stop(run.child, timeout=2)
        raise
    load = run.finish()
    after = stack.status().get("programs", {}).get(program, {})
    restarts = int(after.get("restarts", 0)) - int(before["programs"][program].get("restarts", 0))
    detail = f"{program} restarts +{restarts}"
    if recovered is None:
        detail += f"; not recovered after {RECOVERY_TIMEOUT:g}s: {missing}"
        bench.problems.append(f"generations: kill -9 {label}: {detail}\n"
                              + tail(stack.daemon_log, 8))
    return KillOutcome(label, recovered, load, detail, errors.since())


def kills(bench: Bench, stack: FnudStack) -> list[KillOutcome]:
    """kill -9 of the uWSGI master, then of the nginx master, each under wrk -c32."""
    return [kill_master(bench, stack, program) for program in ("uwsgi", "nginx")]
