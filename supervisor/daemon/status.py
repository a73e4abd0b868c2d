"""What `fnud status` shows: programs, their workers, and the one-line summary."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import psutil

from supervisor.nginx import conf as nginx
from supervisor.process.program import Program
from supervisor.process.states import State
from supervisor.reload.reloader import ReloadResult
from supervisor.stack.stack import Stack
from supervisor.uwsgi import driver as uwsgi


def rss(pid: int) -> int:
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except psutil.Error:
        return 0


def program_status(prog: Program) -> dict[str, Any]:
    alive = prog.state in (State.STARTING, State.RUNNING, State.STOPPING)
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
    """Each program's state, with its workers (uWSGI's from the stats socket)."""
    stats: uwsgi.Stats | None = None
    if stack.uwsgi.state in (State.RUNNING, State.STARTING):
        with contextlib.suppress(OSError, ValueError, asyncio.TimeoutError):
            stats = await uwsgi.read_stats(stack.uwsgi_driver.stats, timeout=1.0)
    out: dict[str, Any] = {}
    for name, prog in stack.programs.items():
        entry = program_status(prog)
        if name == "uwsgi":
            workers = [w.as_dict() for w in stats.live_workers] if stats else []
            if stats:
                entry["listen_queue"] = stats.listen_queue
        else:
            pids = nginx.worker_pids(prog.pid) if prog.state is State.RUNNING else set()
            workers = [{"pid": pid} for pid in sorted(pids)]
        for worker in workers:
            worker["rss"] = rss(worker["pid"])
        entry["workers"] = workers
        out[name] = entry
    return out


def summary(stack: Stack, adopted: set[str], last: ReloadResult | None) -> str:
    """One line for `fnud start`, systemd's STATUS= and the log: programs, workers,
    last reload."""
    parts = []
    for name, prog in stack.programs.items():
        text = f"{name} {prog.state.value.lower()}"
        if name in adopted:
            text += " (adopted)"
        if prog is stack.uwsgi and stack.generation > 1:
            text += f" generation {stack.generation}"
        if prog.running:
            text += f" ({len(prog.children())} workers)"
        parts.append(text)
    if last is not None:
        parts.append(f"last reload {last.result}")
    return ", ".join(parts)


def generation(stack: Stack, warm: Program | None) -> dict[str, Any]:
    """The serving uWSGI generation and, while a settle keeps it warm, the previous one."""
    driver = stack.uwsgi_driver
    out: dict[str, Any] = {
        "number": driver.generation,
        "release": driver.release,
        "state": "settling" if warm is not None else "serving",
        "mode": "generation" if stack.generation_mode() else "chain",
        "previous": None,
    }
    if warm is not None:
        old = stack.driver_of(warm)
        out["previous"] = {
            "number": old.generation, "release": old.release, "state": "paused",
            "pid": warm.pid,
        }
    return out
