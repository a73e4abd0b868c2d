"""Starting a program again: after a crash (policy.restart decides when), at the end of
a backoff, or when the health probe blames it. Each restart is an operation of its own
(it takes its turn), and none begins once the daemon is stopping."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from supervisor.daemon.operations import Op, OperationError, Operations
from supervisor.daemon.phase import Phase
from supervisor.logs import logsetup
from supervisor.policy.restart import Decision, ExitFacts, after_exit
from supervisor.process.program import Program
from supervisor.process.states import State
from supervisor.stack.stack import Stack


class Restarts:
    def __init__(self, stack: Stack, ops: Operations, phase: Callable[[], Phase]) -> None:
        self.stack = stack
        self.ops = ops
        self.phase = phase
        self.log = logsetup.get("daemon")

    def after_exit(self, facts: ExitFacts) -> Decision:
        return after_exit(facts, self.stack.config.backoff)

    async def respawn(self, prog: Program[Any]) -> bool:
        """Clean what the last process left in its group, then start anew (only while
        the daemon is running: never after a stop began). The caller holds the turn."""
        if self.phase() is not Phase.RUNNING:
            return False
        leftovers = prog.leftovers_of_last()
        if not prog.driver.holds_sockets():
            await prog.reap_leftovers(leftovers)  # they may hold the port it will bind
        await prog.spawn()  # on held sockets at once: connections wait in the backlog
        await prog.reap_leftovers(leftovers)
        return True

    async def retry(self, prog: Program[Any]) -> None:
        """A backoff (or a FATAL program's cool-down) ended."""
        with contextlib.suppress(OperationError):  # fnud began to stop meanwhile
            async with self.ops.turn(Op.RESTARTING):  # never beside a reload's own restart
                if prog.state not in (State.BACKOFF, State.FATAL):
                    return
                prog.count_restart()
                await self.respawn(prog)

    async def restart(self, prog: Program[Any], why: str) -> None:
        """Stop (briefly graceful, then SIGKILL to the group) and start again."""
        with contextlib.suppress(OperationError):
            await self._restart(prog, why)

    async def _restart(self, prog: Program[Any], why: str) -> None:
        async with self.ops.turn(Op.RESTARTING):
            self.log.warning("restarting", program=prog.name, why=why)
            prog.count_restart(probe=True)
            fnud = self.stack.config.fnud
            await prog.stop(time.monotonic() + min(fnud.stop_timeout, 5.0))
            if not await self.respawn(prog):
                return
            await prog.wait_state([State.RUNNING, State.FATAL, State.BACKOFF], fnud.start_timeout)
