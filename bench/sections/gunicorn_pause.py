"""What a paused gunicorn generation does to requests, how long a new generation takes to
be ready, what a cold rollback costs, and kill -9 of the master: next to uWSGI."""

from __future__ import annotations

import json
import os
import statistics
import time
from dataclasses import dataclass
from typing import Any

from bench.client import Answer, Client, describe_failures
from bench.context import Bench
from bench.observe import Timed, timed_cli
from bench.report import Table, ms
from bench.sections.generations_load import KillOutcome, kill_master
from bench.sections.gunicorn import SERVERS, Server, gunicorn_files, start
from bench.stacks import FnudStack

WINDOW = 4.0  # seconds the previous generation stays paused before `fnud rollback`
LEAD = WINDOW  # seconds of the same load before the reload: the window to compare with
SLOW = 0.5  # an answer slower than this waited for something
TAIL = 1.5
GRACE = 0.1  # after fnud says the previous generation is paused
LONG_SETTLE = 60.0  # the pause lasts until the rollback, not the settle's end
COLD_WORKER = '''"""A sync worker fnud does not know as one: it cannot pause it."""
from gunicorn.workers import base, sync

Worker = type("Worker", (base.Worker,), {
    name: value for name, value in vars(sync.SyncWorker).items() if not name.startswith("__")
})
'''
COLD_STARTS = [
    *SERVERS,
    Server("gunicorn sync 16", 16, 1),
    Server("gunicorn sync 16 preload", 16, 1, conf="preload_app = True"),
]


def _status(stack: FnudStack) -> dict[str, Any]:
    try:
        return stack.status()
    except ValueError:
        return {}


def _wait(test: Any, timeout: float = 30.0) -> float | None:
    """Poll ``test`` every 10 ms; the monotonic time it first held (None: never)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if test():
            return time.monotonic()
        time.sleep(0.01)
    return None


def _previous(stack: FnudStack) -> str:
    previous = (_status(stack).get("generation") or {}).get("previous") or {}
    return str(previous.get("state") or "")


def _pid(answer: Answer) -> int | None:
    try:
        return int(json.loads(answer.body)["pid"])
    except (ValueError, KeyError, TypeError):
        return None


@dataclass
class Paused:
    server: str
    reload_at: float  # monotonic: the reload command
    paused_at: float | None  # monotonic: fnud says the previous generation is paused
    rollback: Timed | None
    fast: list[Answer]
    slow: list[Answer]
    old: set[int]

    def row(self) -> list[Any]:
        if self.paused_at is None or self.rollback is None:
            return [self.server, "not paused", *["-"] * 9]
        start, end = self.paused_at + GRACE, self.rollback.began
        during = [a.ended - a.began for a in self.fast if start <= a.began and a.ended <= end]
        before = [a.ended - a.began for a in self.fast if a.ended < self.reload_at]
        taken = sum(1 for a in self.fast if start <= a.began and a.ended <= end
                    and _pid(a) in self.old)
        flight = [a for a in self.slow if a.began < self.paused_at < a.ended]
        resumed = [a.ended for a in self.fast if a.began >= end and _pid(a) in self.old]
        return [
            self.server, len(during), taken, sum(t > SLOW for t in during),
            ms(max(during, default=None)), sum(t > SLOW for t in before),
            ms(max(before, default=None)), f"{sum(a.ok for a in flight)}/{len(flight)}",
            describe_failures(self.fast + self.slow),
            ms(min(resumed) - end if resumed else None), ms(self.rollback.seconds),
        ]


def _pause(bench: Bench, stack: FnudStack, server: str) -> Paused:
    s = bench.settings
    old = stack.worker_pids()
    fast = Client(stack.url + "pid", clients=s.light_clients, pause=0.0).start()
    slow = Client(stack.url + "sleep?s=0.5", clients=2, pause=0.0).start()
    rollback = None
    try:
        time.sleep(LEAD)
        reload_at = time.monotonic()
        timed_cli(stack, "reload", "--app", "--no-wait")
        paused_at = _wait(lambda: _previous(stack) == "paused")
        if paused_at is not None:
            time.sleep(WINDOW)
            rollback = timed_cli(stack, "rollback")
        time.sleep(TAIL)
    finally:
        answers, slow_answers = fast.stop(), slow.stop()
    return Paused(server, reload_at, paused_at, rollback, answers, slow_answers, old)


def _cold_starts(bench: Bench, stack: FnudStack) -> list[float]:
    """Seconds from "starting" to "every worker accepts" of timed reloads."""
    out = []
    for _ in range(bench.settings.gen_timed):
        run = timed_cli(stack, "reload", "--app", "--no-wait")
        began, ready = run.at(": starting "), run.at("every worker accepts")
        if run.code == 0 and began is not None and ready is not None:
            out.append(ready - began)
        else:
            bench.problems.append(f"gunicorn_pause: reload exit {run.code}: {run.last()}")
    return out


def _cold_rollback(bench: Bench) -> list[Any]:
    """A worker class fnud cannot pause: `fnud rollback` during the settle starts the
    previous release again (releases behind a `current` symlink)."""
    files = gunicorn_files(bench, "gu-cold", 4, 1, LONG_SETTLE,
                           'worker_class = "coldworker.Worker"')
    app = (files.root / "app" / "app.py").read_text()
    for name, text in (("r1", "release one"), ("r2", "release two")):
        release = files.root / "releases" / name
        release.mkdir(parents=True)
        (release / "app.py").write_text(app.replace("Hello from fnud", text))
        (release / "coldworker.py").write_text(COLD_WORKER)
    (files.root / "current").symlink_to("releases/r1")
    files.toml.write_text(files.toml.read_text().replace('chdir = "app"', 'chdir = "current"'))
    stack = bench.private_stack(files)
    client = Client(stack.url, clients=bench.settings.light_clients, pause=0.0).start()
    try:
        time.sleep(LEAD)
        os.replace(_link(files.root, "releases/r2"), files.root / "current")
        timed_cli(stack, "reload", "--app", "--no-wait")
        stopped = _wait(lambda: _previous(stack) == "stopped")
        time.sleep(1.0)
        rollback = timed_cli(stack, "rollback")
        time.sleep(TAIL)
    finally:
        answers = client.stop()
    bench.problems += bench.stop_private(stack)
    back = [a.ended for a in answers if a.began >= rollback.began and a.body == b"release one\n"]
    window = [a for a in answers if a.began >= rollback.began]
    return [
        "gunicorn, a worker class it cannot pause", "yes" if stopped else "no",
        ms(min(back) - rollback.began if back else None), ms(rollback.seconds),
        ms(max((a.ended - a.began for a in window), default=None)), describe_failures(answers),
    ]


def _link(root: Any, target: str) -> Any:
    tmp = root / "current.tmp"
    tmp.symlink_to(target)
    return tmp


def gunicorn_pause(bench: Bench) -> list[Table]:
    """Pause: per app server, a stack with [reload] settle = 60 s under light load
    (BENCH_LIGHT_CLIENTS clients GET /pid back to back, 2 clients GET /sleep?s=0.5): 4 s
    of it on one generation ("before"), `fnud reload --app --no-wait`, then a window of 4 s
    with the previous generation paused (from when `fnud status` says so, plus 0.1 s),
    then `fnud rollback`, which resumes it. "answers" = /pid answers in the window; "taken
    by paused" = those given by a worker of the paused generation (it must take none);
    "> 0.5s" and "max": how many took over 0.5 s, the slowest (a request that waited for
    the pause would show here), next to the same before the reload;
    "in flight at pause" = /sleep requests begun before the pause and ended after it, and
    how many answered 200; "resumed after" = rollback command -> the first answer of a
    request begun after it, given by a resumed worker; "rollback CLI" = `fnud rollback`'s
    wall time (it also stops the new generation). Cold start: BENCH_GEN_TIMED reloads per
    stack, the new generation's "starting" -> "every worker accepts" lines (the median).
    Cold rollback: a gunicorn worker class fnud cannot pause (a sync worker under another
    class): the previous generation is stopped at the switch and `fnud rollback` during
    the settle starts its release again; "serving again" = command -> the first answer of
    the old release. kill -9: the master of the serving generation under wrk -t2 -c32
    (32 requests in flight at any moment); "recovered" = kill -> the stack whole again.
    """
    pauses, kills, starts = [], [], []
    for server in SERVERS:
        stack = start(bench, server, settle=LONG_SETTLE)
        starts.append((server.label, _cold_starts(bench, stack)))
        pauses.append(_pause(bench, stack, server.label))
        program = "gunicorn" if server.gunicorn else "uwsgi"
        kills.append(kill_master(bench, stack, program))
        bench.problems += bench.stop_private(stack)
    for server in COLD_STARTS[len(SERVERS):]:
        stack = start(bench, server)
        starts.append((server.label, _cold_starts(bench, stack)))
        bench.problems += bench.stop_private(stack)
    cold = _cold_rollback(bench)
    return [_pause_table(pauses), _start_table(starts, cold), _kill_table(kills, SERVERS)]


def _pause_table(pauses: list[Paused]) -> Table:
    table = Table(
        f"the previous generation paused for {WINDOW:g}s, then resumed by fnud rollback",
        ["app server", "answers", "taken by paused", f"> {SLOW:g}s", "max",
         f"before: > {SLOW:g}s", "before: max", "in flight at pause", "failed",
         "resumed after", "rollback CLI"],
    )
    table.rows += [p.row() for p in pauses]
    table.notes.append("uWSGI pauses with its fifo's p; gunicorn sync workers park between "
                       "requests, gthread workers stop polling the socket")
    return table


def _start_table(starts: list[tuple[str, list[float]]], cold: list[Any]) -> Table:
    table = Table(
        "a new generation: starting -> every worker accepts (cold start); a cold rollback",
        ["app server", "reloads", "cold start med", "cold start max"],
    )
    for label, times in starts:
        table.rows.append([label, len(times), ms(statistics.median(times) if times else None),
                           ms(max(times, default=None))])
    table.notes.append(
        f"cold rollback ({cold[0]}): previous stopped at the switch {cold[1]}; serving the "
        f"old release again {cold[2]} after the command (CLI {cold[3]}); max latency "
        f"{cold[4]}; failed {cold[5]}"
    )
    return table


def _kill_table(kills: list[KillOutcome], servers: list[Server]) -> Table:
    table = Table(
        "kill -9 of the serving master under wrk -t2 -c32",
        ["app server", "recovered", "requests", "failed", "in flight", "nginx errors", "detail"],
    )
    for server, outcome in zip(servers, kills, strict=True):
        load = outcome.load
        table.rows.append([
            server.label, ms(outcome.recovered), load.requests if load else "-",
            outcome.failed_text(), 32, outcome.nginx_errors or "none", outcome.detail,
        ])
    return table
