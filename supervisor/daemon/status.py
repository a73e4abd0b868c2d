"""What `fnud status` shows: programs, their workers, the generations, and the one-line
summary for `fnud start`, systemd's STATUS= and the log. Read-only: it never waits for
an operation to end."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from supervisor.appserver.port import WorkersUnknown
from supervisor.appserver.workers import Stats
from supervisor.logs.sink import Sink
from supervisor.process.group import rss
from supervisor.process.program import Program
from supervisor.process.states import State
from supervisor.reload.request import ReloadResult
from supervisor.runtime.release import Release
from supervisor.stack.stack import AppProgram, Stack

ALIVE = (State.STARTING, State.RUNNING, State.STOPPING)


def program_status(prog: Program[Any]) -> dict[str, Any]:
    alive = prog.state in ALIVE
    return {
        "state": prog.state.value,
        "pid": prog.pid if prog.state is not State.STOPPED else 0,
        "rss": rss(prog.pid) if alive else 0,
        "uptime": round(prog.uptime(), 1),
        "restarts": prog.restarts,
        "probe_restarts": prog.probe_restarts,
        "why": prog.why if prog.state is State.STARTING else "",
        "last_exit": prog.last_exit,
    }


async def programs(stack: Stack) -> dict[str, Any]:
    """Each program's state, with its workers (the app server's from its own facts)."""
    stats: Stats | None = None
    if stack.app.state in (State.RUNNING, State.STARTING):
        stack.app.drain()  # the log lines written so far: what it tells is current
        try:
            stats = await stack.app.driver.workers()
        except WorkersUnknown:
            stats = None
    out: dict[str, Any] = {}
    for name, prog in stack.programs.items():
        entry = program_status(prog)
        if prog is stack.app:
            workers = [w.as_dict() for w in stats.live_workers] if stats else []
            if stats:
                entry["listen_queue"] = stats.listen_queue
        else:
            pids = prog.children() if prog.state is State.RUNNING else set()
            workers = [{"pid": pid} for pid in sorted(pids)]
        for worker in workers:
            worker["rss"] = rss(worker["pid"])
        entry["workers"] = workers
        out[name] = entry
    return out


def app_server(stack: Stack) -> dict[str, str] | None:
    """Which program is the app server, and how users know it (None: nginx alone)."""
    if stack.app.name not in stack.programs:
        return None
    return {"program": stack.app.name, "display": stack.app.driver.display}


def summary(stack: Stack, adopted: set[str], last: ReloadResult | None) -> str:
    """One line: programs, workers, last reload."""
    parts = []
    for name, prog in stack.programs.items():
        text = f"{name} {prog.state.value.lower()}"
        if name in adopted:
            text += " (adopted)"
        if prog is stack.app and stack.generation > 1:
            text += f" generation {stack.generation}"
        if prog.running:
            text += f" ({len(prog.children())} workers)"
        parts.append(text)
    if last is not None:
        parts.append(f"last reload {last.result}")
    return ", ".join(parts)


def generation(
    stack: Stack, warm: AppProgram | None, cold: Release | None = None
) -> dict[str, Any]:
    """The serving generation and, during a settle, the previous one: kept warm
    (paused), or stopped with its release pinned (``cold``: a rollback starts it)."""
    driver = stack.app.driver
    out: dict[str, Any] = {
        "number": driver.number,
        "release": driver.release,
        "state": "settling" if warm is not None or cold is not None else "serving",
        "mode": "generation" if stack.plan.generation_mode else "chain",
        "previous": None,
    }
    if warm is not None:
        out["previous"] = {
            "number": warm.driver.number, "release": warm.driver.release, "state": "paused",
            "pid": warm.pid,
        }
    elif cold is not None:
        out["previous"] = {
            "number": cold.number, "release": cold.directory, "state": "stopped", "pid": 0,
        }
    return out


LOW_SPACE = 64 * 1024  # bytes free in the log dir below which log lines are being lost


def problems(log_dir: Path, sink: Sink | None) -> list[str]:
    """What keeps fnud from doing all of its job while the stack serves (one line each)."""
    out = []
    try:
        disk = os.statvfs(log_dir)
        free = disk.f_bavail * disk.f_frsize
        if free < LOW_SPACE:
            out.append(f"the log dir {log_dir} is full ({free} bytes free): log lines "
                       "are being lost; free some space")
    except OSError as exc:
        out.append(f"the log dir {log_dir}: {exc.strerror}")
    if sink is not None and sink.failing:
        since = time.strftime("%H:%M:%S", time.localtime(sink.since))
        out.append(f"fnud's own log cannot be written since {since} ({sink.failing}): "
                   f"{sink.lost} lines lost")
    return out
