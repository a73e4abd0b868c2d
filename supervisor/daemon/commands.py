"""Control commands the daemon answers on its socket (the CLI is a thin client)."""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any

from supervisor.control.server import CommandError, Emit, Handler
from supervisor.process.states import Phase
from supervisor.reload.reloader import ReloadRequest

if TYPE_CHECKING:
    from supervisor.daemon.loop import Daemon


def _trigger(args: dict[str, Any]) -> str:
    """Who ran the CLI, as the status page's history shows it."""
    return "systemd" if args.get("trigger") == "systemd" else "cli"


def handlers(daemon: Daemon) -> dict[str, Handler]:
    async def ping(args: dict[str, Any], emit: Emit) -> Any:
        return {"pid": os.getpid(), "phase": daemon.phase.value}

    async def stop(args: dict[str, Any], emit: Emit) -> Any:
        await emit("stopping nginx, then uWSGI")
        await asyncio.shield(daemon.begin_shutdown(0))
        return {"stopped": True}

    async def run(request: ReloadRequest, emit: Emit) -> Any:
        if daemon.phase is not Phase.RUNNING:
            raise CommandError(f"cannot reload while {daemon.phase.value}")
        task = daemon.spawn_task(daemon.reloader.reload(request, emit), "reload")
        if request.no_wait and request.switched is not None:  # back at the switch
            switched = asyncio.ensure_future(request.switched.wait())
            await asyncio.wait({task, switched}, return_when=asyncio.FIRST_COMPLETED)
            switched.cancel()
            if not task.done():
                return {"result": "ok", "message": "switched; settling in the background"}
        result = await asyncio.shield(task)
        # fnud rollback during a settle: the settling generation was rolled back, as asked
        wanted = ("ok", "rolled_back") if request.rollback else ("ok",)
        if result.result not in wanted:
            raise CommandError(f"{result.result}: {result.message}")
        return result.as_dict()

    async def reload(args: dict[str, Any], emit: Emit) -> Any:
        return await run(ReloadRequest(
            nginx=bool(args.get("nginx", True)),
            app=bool(args.get("app", True)),
            force_nginx=bool(args.get("force_nginx", False)),
            reason="fnud reload",
            no_wait=bool(args.get("no_wait", False)),
            switched=asyncio.Event(),
            trigger=_trigger(args),
        ), emit)

    async def rollback(args: dict[str, Any], emit: Emit) -> Any:
        return await run(
            ReloadRequest(nginx=False, app=True, reason="fnud rollback", rollback=True,
                          trigger=_trigger(args)), emit
        )

    async def reopen_logs(args: dict[str, Any], emit: Emit) -> Any:
        return await daemon.reopen_logs()

    async def status(args: dict[str, Any], emit: Emit) -> Any:
        return await daemon.status()

    return {
        "ping": ping,
        "status": status,
        "stop": stop,
        "reload": reload,
        "rollback": rollback,
        "reopen-logs": reopen_logs,
    }
