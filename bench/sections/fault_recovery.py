"""Kill -9 each part of the stack under load; time until it serves and is whole."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any

import psutil

from bench.client import Answer, Client, describe_failures, failures
from bench.context import Bench
from bench.procs import group_members
from bench.report import Table, ms
from bench.stacks import FnudStack, http_ok, tail

RECOVERY_TIMEOUT = 60.0  # a fault not recovered by then is reported, and the stack replaced
TAIL = 1.0  # seconds of load after recovery (failures there would be odd)
PAUSE = 0.02  # each client waits this long between its requests
NGINX_WORKERS = 2  # worker_processes in the bench's nginx.conf


@dataclass(frozen=True)
class Fault:
    label: str
    program: str  # "uwsgi", "nginx" or "daemon"
    part: str  # "worker", "master" or "daemon"


FAULTS = [
    Fault("uWSGI worker", "uwsgi", "worker"),
    Fault("uWSGI master", "uwsgi", "master"),
    Fault("nginx worker", "nginx", "worker"),
    Fault("nginx master", "nginx", "master"),
    Fault("fnud daemon", "daemon", "daemon"),
]


@dataclass
class Outcome:
    fault: Fault
    victim: int
    killed: float  # monotonic
    recovered: float | None = None
    answers: list[Answer] = field(default_factory=list)
    fnud_view: str = ""
    left: list[str] = field(default_factory=list)
    detail: str = ""
    polls: int = 0
    polling: float = 0.0  # seconds spent in polls

    @property
    def window(self) -> list[Answer]:
        """Requests that were in flight at some point between the kill and recovery."""
        end = self.recovered if self.recovered is not None else float("inf")
        return [a for a in self.answers if a.ended >= self.killed and a.began <= end]

    def after(self, t: float | None) -> float | None:
        return None if t is None else t - self.killed


def _pids(state: dict[str, Any], program: str) -> tuple[int, set[int]]:
    prog = state.get("programs", {}).get(program, {})
    return int(prog.get("pid") or 0), {int(w["pid"]) for w in prog.get("workers", [])}


def unhealthy(state: dict[str, Any], processes: int) -> str | None:
    """None when fnud status shows a whole stack: the daemon running, every program
    RUNNING, ``processes`` app server workers accepting with the app, NGINX_WORKERS nginx
    workers; else what is missing."""
    if state.get("daemon", {}).get("phase") != "running":
        return "no daemon running"
    programs = state.get("programs", {})
    down = [f"{n} {p.get('state')}" for n, p in programs.items() if p.get("state") != "RUNNING"]
    if down or not programs:
        return ", ".join(down) or "no programs"
    app = (state.get("app") or {}).get("program", "uwsgi")
    workers = programs[app].get("workers", [])
    ready = [w for w in workers if w.get("accepting") and w.get("apps")]
    if len(workers) != processes or len(ready) != processes:
        return f"{app} {len(ready)}/{processes} workers accepting"
    if len(programs["nginx"].get("workers", [])) != NGINX_WORKERS:
        return f"nginx {len(programs['nginx'].get('workers', []))}/{NGINX_WORKERS} workers"
    return None


def _victim(state: dict[str, Any], fault: Fault) -> int:
    if fault.part == "daemon":
        return int(state["daemon"]["pid"])
    master, workers = _pids(state, fault.program)
    return master if fault.part == "master" else min(workers)


def _replaced(state: dict[str, Any], fault: Fault, victim: int) -> bool:
    if fault.part == "daemon":
        return int(state.get("daemon", {}).get("pid") or 0) != victim
    master, workers = _pids(state, fault.program)
    return master != victim if fault.part == "master" else victim not in workers


def _status(stack: FnudStack) -> dict[str, Any]:
    try:
        return stack.status()
    except ValueError:  # no daemon: `fnud status --json` prints nothing
        return {}


def _gone(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.005)


def _inflict(bench: Bench, stack: FnudStack, fault: Fault, processes: int) -> Outcome:
    s = bench.settings
    load = Client(stack.url, clients=s.light_clients, pause=PAUSE,
                  max_seconds=RECOVERY_TIMEOUT + 60)
    with load:
        load.wait_answers(20)
        before = stack.status()
        victim = _victim(before, fault)
        outcome = Outcome(fault, victim, time.monotonic())
        os.kill(victim, signal.SIGKILL)
        if fault.part == "daemon":
            _gone(victim)
            began = time.monotonic()
            result = stack.cli("start", timeout=120)
            lines = (result.stdout + result.stderr).strip().splitlines()
            said = lines[-1].split("): ", 1)[-1].split(";")[0] if lines else ""
            outcome.fnud_view = (
                f"`fnud start` {time.monotonic() - began:.2f}s, exit {result.returncode}: {said}"
            )
        missing = ""
        while time.monotonic() - outcome.killed < RECOVERY_TIMEOUT:
            poll = time.monotonic()
            serving = http_ok(stack.url, timeout=2.0)
            state = _status(stack)
            outcome.polls += 1
            outcome.polling += time.monotonic() - poll
            missing = unhealthy(state, processes) or (
                "" if _replaced(state, fault, victim) else f"{fault.label} {victim} still listed"
            )
            if serving and not missing:
                outcome.recovered = time.monotonic()
                break
            if not serving:
                missing = "GET / through nginx fails" + (f"; {missing}" if missing else "")
            time.sleep(0.02)
        else:
            outcome.detail = (
                f"not recovered after {RECOVERY_TIMEOUT:g}s: {missing}; the end of "
                f"{stack.daemon_log}:\n" + tail(stack.daemon_log, 8)
            )
        time.sleep(TAIL)
        outcome.answers = load.stop()
    after = _status(stack)
    if fault.part != "daemon":
        prog_before = before["programs"][fault.program]
        prog_after = after.get("programs", {}).get(fault.program, {})
        restarts = int(prog_after.get("restarts", 0)) - int(prog_before.get("restarts", 0))
        view = f"{fault.program} restarts +{restarts}"
        if prog_after.get("last_exit") and prog_after.get("last_exit") != prog_before.get(
            "last_exit"
        ):
            view += f"; last_exit: {str(prog_after['last_exit']).split(':')[0]}"
        outcome.fnud_view = view
    if fault.part in ("master", "daemon"):  # the old process group must be empty
        outcome.left = [f"{p.pid} {' '.join(p.cmdline())[:60]}" for p in group_members(victim)]
    if fault.part == "daemon":
        daemons = [p for p in psutil.process_iter(["cmdline"])
                   if str(stack.files.toml) in " ".join(p.info["cmdline"] or [])
                   and "--foreground" in (p.info["cmdline"] or [])]
        if len(daemons) != 1:
            outcome.left.append(f"{len(daemons)} daemons for this stack")
    return outcome


def fault_recovery(bench: Bench) -> list[Table]:
    """A private fnud stack (same ini and conf: 4 uWSGI workers, 2 nginx workers; fnud's
    defaults: [backoff] initial 0.5 s, [health] interval 10 s) under a light load
    (BENCH_LIGHT_CLIENTS client threads on 127.0.0.1, each: GET / through nginx on a new
    connection, then a 20 ms pause). For each fault, on the stack recovered from the
    previous one (a fresh stack if it did not recover): kill -9 of one uWSGI worker, of
    the uWSGI master, of one nginx worker, of the nginx master, of the fnud daemon itself
    (then `fnud start`, which must adopt the running programs). "recovered" = from the
    kill until, in one poll (back to back: a GET / through nginx, then `fnud status
    --json`), the GET answers 200 AND status shows the daemon running, every program
    RUNNING, 4 uWSGI workers accepting with the app, 2 nginx workers, and the victim no
    longer listed. "failed" = load requests in flight at some point between the kill and
    recovery that did not answer 200 (zero is promised only for the daemon kill);
    "failing until" = kill -> end of the last failed one (requests succeed from then on). "left
    behind" = live processes still in a killed master's (or daemon's) process group after
    recovery, or more than one daemon for the stack.
    """
    processes = bench.settings.processes
    stack = bench.private_fnud("faults")
    outcomes: list[Outcome] = []
    try:
        for fault in FAULTS:
            state = _status(stack)
            why = unhealthy(state, processes) or ("" if http_ok(stack.url) else "GET / fails")
            if why:
                bench.problems.append(f"fault_recovery: stack not whole before {fault.label} "
                                      f"({why}): replaced by a fresh one")
                bench.problems += bench.stop_private(stack)
                stack = bench.private_fnud("faults")
            outcomes.append(_inflict(bench, stack, fault, processes))
    finally:
        bench.problems += bench.stop_private(stack)

    table = Table(
        "fault_recovery: kill -9 under light load",
        ["kill -9", "victim pid", "recovered", "failing until", "requests", "failed",
         "left behind", "fnud"],
    )
    for o in outcomes:
        window = o.window
        failed = failures(window)
        table.rows.append([
            o.fault.label, o.victim, ms(o.after(o.recovered)),
            ms(max(a.ended for a in failed) - o.killed) if failed else "-",
            len(window), describe_failures(window), "; ".join(o.left) or "nothing",
            o.fnud_view,
        ])
    for o in outcomes:
        outside = [a for a in failures(o.answers) if a not in o.window]
        if o.recovered is None:
            message = f"{o.fault.label} ({o.polls} polls): {o.detail}"
            table.notes.append(message)
            bench.problems.append(f"fault_recovery {message}")
        if outside:
            message = (f"{o.fault.label}: {describe_failures(outside)} failed outside the "
                       f"kill..recovery window")
            table.notes.append(message)
            bench.problems.append(f"fault_recovery {message}")
        if o.left:
            bench.problems.append(f"fault_recovery {o.fault.label}: left behind {o.left}")
        if o.fault.part == "daemon" and failures(o.window):
            bench.problems.append(
                f"fault_recovery: fnud daemon kill failed {describe_failures(o.window)} "
                "requests (zero promised)"
            )
    total = sum(len(o.window) for o in outcomes)
    poll_count = sum(o.polls for o in outcomes)
    table.notes += [
        f"load: {bench.settings.light_clients} clients, {PAUSE * 1000:g} ms pause each; "
        f"{total:,} requests in the fault windows",
        f"one poll (GET / with a 2 s timeout, then `fnud status --json`): "
        f"{ms(sum(o.polling for o in outcomes) / max(1, poll_count))} on average, the resolution "
        f"of 'recovered'",
    ]
    return [table]
