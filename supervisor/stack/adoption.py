"""Adoption: programs a killed daemon left running are watched instead of started anew."""

from __future__ import annotations

import time

from supervisor.logs import logsetup
from supervisor.sockets import held as sockets
from supervisor.stack import survivors
from supervisor.stack.stack import Stack


async def adopt(stack: Stack, found: dict[str, int]) -> set[str]:
    """Take over ``found`` ({program: master pid}, from :func:`survivors.find`); restore
    what the running processes were started with. Returns the adopted names."""
    state = survivors.load_state(stack.paths)
    generation = state.get("generation")
    if "uwsgi" in found and isinstance(generation, int) and generation > 0:
        stack.renumber(generation)  # its fifo, stats socket and ini carry the number
        stack.restore_release(state.get("release"))  # rollback can go back from it
    for name, pid in found.items():
        entry = state.get(name)
        started = entry.get("started") if isinstance(entry, dict) else None
        await stack.programs[name].adopt(pid, float(started or time.time()))
    if "uwsgi" in found:
        stack.ini_digest = str(state.get("ini_digest", ""))
    if "nginx" in found:
        stack.nginx_digest = str(state.get("nginx_digest", ""))
    _recover_sockets(stack, found, state.get("sockets"))
    if found:
        logsetup.get("daemon").info(
            "adopted programs left running by a previous daemon",
            programs={name: stack.programs[name].pid for name in sorted(found)},
        )
    return set(found)


def _recover_sockets(stack: Stack, found: dict[str, int], recorded: object) -> None:
    """Take the held sockets back from the adopted masters, so the next crash is still
    lossless; without them (no rights, old kernel) those programs bind their own."""
    if not isinstance(recorded, dict):
        return
    log = logsetup.get("daemon")
    for name, holder, specs in (
        ("uwsgi", stack.uwsgi_sockets, stack.uwsgi_specs()),
        ("nginx", stack.nginx_sockets, stack.nginx_driver.specs(stack.nginx_conf())),
    ):
        fds = recorded.get(name)
        if name not in found or not isinstance(fds, dict):
            continue
        missed = sockets.recover(holder, found[name], fds, specs)
        if missed:
            log.warning("held sockets not recovered", program=name, missed=missed)
