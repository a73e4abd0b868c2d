"""`fnud start`: the gate, adoption of survivors, then the app server and nginx in order,
until a request through nginx succeeds."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from supervisor.health import httpget
from supervisor.process.program import Program
from supervisor.process.states import State
from supervisor.reload import gate
from supervisor.stack import adoption, survivors
from supervisor.stack.plan import StackError
from supervisor.stack.stack import Stack
from supervisor.systemd.notify import Notifier


class StartupError(Exception):
    pass


async def start_stack(stack: Stack, the_gate: gate.Gate, notifier: Notifier) -> set[str]:
    """Bring the stack up; return the names of the programs adopted instead of started."""
    config = stack.config
    # workers a dead master left (nginx's hold the port): not adoptable, so they go
    await asyncio.to_thread(survivors.reap_orphans, config)
    stack.prepare()
    found = survivors.find(config)  # the checks' port rule knows these are ours
    # sockets systemd kept for us are bound already (by us): their ports are not "in use"
    try:
        await the_gate.run(gate.Request(
            nginx=True, app=not config.balancer and stack.app.name not in found,
            reread=False, check_ports=not stack.inherited(),
        ))
    except gate.Refused as exc:
        raise StartupError(str(exc)) from None
    adopted = await adoption.adopt(stack, found)
    try:
        stack.hold_sockets(adopted)  # every socket bound before anything starts
    except (OSError, StackError) as exc:
        raise StartupError(str(exc)) from None
    notifier.store_fds(stack.held_fds())
    for prog in stack.programs.values():  # the app first: nginx once the app accepts
        if prog.name not in adopted:
            await prog.spawn()
            await wait_running(prog, config.fnud.start_timeout + 5)
    await wait_healthy(stack)
    return adopted


async def wait_running(prog: Program[Any], timeout: float) -> None:
    settled = {State.RUNNING, State.FATAL, State.STOPPED, State.STOPPING}
    await prog.wait_state(settled, timeout)
    if prog.state is State.RUNNING:
        return
    reason = prog.last_exit or prog.why or "did not start"
    raise StartupError(f"{prog.name} failed to start: {reason}")


async def wait_healthy(stack: Stack) -> None:
    config = stack.config
    url = config.health.url
    deadline = time.monotonic() + config.fnud.start_timeout
    last = ""
    while time.monotonic() < deadline:
        for prog in stack.programs.values():
            if prog.state is not State.RUNNING:
                raise StartupError(f"{prog.name} failed to start: {prog.last_exit}")
        try:
            await httpget.check(url, config.health.timeout)
            return
        except httpget.HealthError as exc:
            last = str(exc)
        await asyncio.sleep(0.1)
    raise StartupError(f"health check never passed: {last}")
