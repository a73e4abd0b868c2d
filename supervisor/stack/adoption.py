"""Adoption: programs a killed daemon left running are watched instead of started anew."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping

from supervisor.logs import logsetup
from supervisor.runtime.state import ProgramRecord, StackState
from supervisor.sockets.held import Spec
from supervisor.sockets.recover import recover
from supervisor.stack import survivors
from supervisor.stack.stack import Stack


async def adopt(stack: Stack, found: dict[str, int]) -> set[str]:
    """Take over ``found`` ({program: master pid}, from :func:`survivors.find`); restore
    what the running processes were started with. Returns the adopted names."""
    state = stack.load_state()
    if stack.app.name in found:
        # its files carry the number; rollback can go back from what it pinned
        release = state.release
        stack.adopt_generation(
            state.generation, release if release and stack.plan.loads(release) else None
        )
        stack.ini_digest = state.ini_digest
    if stack.nginx.name in found:
        stack.nginx_digest = state.nginx_digest
    for name, pid in found.items():
        record = state.programs.get(name)
        await stack.programs[name].adopt(pid, record.started if record else time.time())
    _recover_sockets(stack, found, state.sockets)
    await _stop_others(stack, state, found)
    if found:
        logsetup.get("daemon").info(
            "adopted programs left running by a previous daemon",
            programs={name: stack.programs[name].pid for name in sorted(found)},
        )
    return set(found)


async def _stop_others(stack: Stack, state: StackState, found: dict[str, int]) -> None:
    """Generations the killed daemon had beside the serving one (warm for a rollback,
    starting, retiring) are stopped: resumed first when they were paused, then stopped
    gracefully; any other app server master of this config still running goes too."""
    log = logsetup.get("daemon")
    deadline = time.monotonic() + stack.config.fnud.stop_timeout
    for other in state.others:
        record = ProgramRecord(other.pid, other.started)
        if not survivors.verified(stack.app.name, record, stack.config):
            continue
        prog = stack.stray(other)
        await prog.adopt(other.pid, other.started)
        log.info("stopping a generation a previous daemon left", generation=other.generation,
                 pid=other.pid, paused=other.paused)
        await prog.stop(deadline)
        stack.forget(prog)
    keep = set(found.values())
    stopped = await asyncio.to_thread(survivors.stop_strays, stack.config, keep, 5.0)
    if stopped:
        log.info("stopped app server masters of this config nobody knew of", pids=stopped)


def _recover_sockets(
    stack: Stack, found: dict[str, int], recorded: Mapping[str, Mapping[str, int]]
) -> None:
    """Take the held sockets back from the adopted masters, so the next crash is still
    lossless; without them (no rights, old kernel) those programs bind their own."""
    log = logsetup.get("daemon")
    specs: dict[str, Callable[[], list[Spec]]] = {
        stack.app.name: stack.plan.app_specs,
        stack.nginx.name: lambda: stack.nginx.driver.specs(stack.plan.nginx_conf),
    }
    for name, holder in stack.holders().items():
        fds = recorded.get(name)
        if name not in found or not fds:
            continue
        missed = recover(holder, found[name], dict(fds), specs[name]())
        if missed:
            log.warning("held sockets not recovered", program=name, missed=missed)
