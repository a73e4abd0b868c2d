"""Every reload and rollback, whatever door it came through: merged, one at a time,
recorded the same way.

A reload asked for while another one waits for its turn merges into it: everyone who
asked gets the merged reload's progress and result, so any number of requests arriving
during a reload make exactly one follow-up. A rollback never merges. A reload arriving
while another one settles ends that settle early; a rollback arriving then rolls the
settling generation back (and gets that reload's result).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from supervisor.common.progress import Emit, fan_out
from supervisor.daemon.operations import Op, OperationError, Operations
from supervisor.reload.request import FAILED, REFUSED, ReloadRequest, ReloadResult
from supervisor.reload.settle import Interrupts

Spawn = Callable[[Coroutine[Any, Any, Any], str], "asyncio.Task[Any]"]
#: runs one request to its end: (request, progress, switched) -> result
Run = Callable[[ReloadRequest, Emit, Callable[[], None]], Coroutine[Any, Any, ReloadResult]]
#: a request that did not run to its end: (request, outcome, why) -> its recorded result
End = Callable[[ReloadRequest, str, str], ReloadResult]


@dataclass(eq=False)
class Ticket:
    """One reload as its askers follow it."""

    request: ReloadRequest
    emits: list[Emit]
    done: asyncio.Future[ReloadResult] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    switched: asyncio.Event = field(default_factory=asyncio.Event)
    started: bool = False

    async def result(self) -> ReloadResult:
        return await asyncio.shield(self.done)

    async def switch_or_result(self) -> ReloadResult | None:
        """None as soon as a new generation serves; else the result."""
        switched = asyncio.ensure_future(self.switched.wait())
        try:
            waits: list[asyncio.Future[Any]] = [self.done, switched]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            switched.cancel()
        return self.done.result() if self.done.done() else None


class Reloads:
    def __init__(
        self, ops: Operations, run: Run, end: End, interrupts: Interrupts, spawn: Spawn,
    ) -> None:
        self.ops = ops
        self.run = run
        self.end = end
        self.interrupts = interrupts
        self.spawn = spawn
        self.waiting: Ticket | None = None  # a reload waiting for its turn (merges)
        self.current: Ticket | None = None  # the one running

    @property
    def pending(self) -> bool:
        return self.waiting is not None or self.current is not None

    def close(self) -> None:
        """fnud is stopping: the reload waiting for its turn is refused now (the one
        running finishes, or is cut short by the stop)."""
        waiting, self.waiting = self.waiting, None
        if waiting is not None and not waiting.done.done():
            waiting.done.set_result(self.end(waiting.request, REFUSED, "fnud is stopping"))

    def submit(self, request: ReloadRequest, emit: Emit) -> Ticket:
        """Queue ``request`` (or join the one already waiting); return its ticket."""
        if self.ops.state is Op.SETTLING and self.current is not None:
            if request.rollback:  # the settling generation is what goes back
                self.interrupts.rollback.set()
                self.current.emits.append(emit)
                return self.current
            self.interrupts.end.set()  # keep what settled so far, then go
        if not request.rollback and self.waiting is not None:
            waiting = self.waiting
            self.waiting = Ticket(waiting.request.merged(request), [*waiting.emits, emit],
                                  waiting.done, waiting.switched)
            return self.waiting
        ticket = Ticket(request, [emit])
        if not request.rollback:
            self.waiting = ticket
        self.spawn(self._take_turn(ticket), "rollback" if request.rollback else "reload")
        return ticket

    async def _take_turn(self, ticket: Ticket) -> None:
        op = Op.ROLLING_BACK if ticket.request.rollback else Op.RELOADING
        result: ReloadResult | None = None
        try:
            if not self.ops.idle:
                waiting = "another reload or start is in progress: waiting for it"
                await fan_out(ticket.emits)(waiting)
            async with self.ops.turn(op):
                if self.waiting is not None and self.waiting.done is ticket.done:
                    ticket, self.waiting = self.waiting, None  # what merged into it meanwhile
                self.current = ticket
                ticket.started = True
                result = await self.run(ticket.request, fan_out(ticket.emits), ticket.switched.set)
        except (OperationError, asyncio.CancelledError):  # fnud stops
            if ticket.done.done():
                return  # refused by close() already
            if ticket.started:
                result = self.end(ticket.request, FAILED, "cut short: fnud is stopping")
            else:
                result = self.end(ticket.request, REFUSED, "fnud is stopping")
        finally:
            if self.waiting is not None and self.waiting.done is ticket.done:
                self.waiting = None
            if self.current is ticket:
                self.current = None
            if not ticket.done.done():
                if result is None:
                    ticket.done.set_exception(RuntimeError("reload crashed: see fnud's log"))
                else:
                    ticket.done.set_result(result)
