"""Adoption: programs a killed daemon left running are watched instead of started anew."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from supervisor.logs import logsetup
from supervisor.sockets.held import Spec
from supervisor.sockets.recover import recover
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
    if found:
        logsetup.get("daemon").info(
            "adopted programs left running by a previous daemon",
            programs={name: stack.programs[name].pid for name in sorted(found)},
        )
    return set(found)


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
