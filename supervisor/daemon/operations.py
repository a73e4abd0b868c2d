"""One operation at a time: the daemon's start, every reload and rollback, a program's
restart, and its stop take turns through :class:`Operations`, whose state names what
is going on (status shows it; the probe only runs while it is idle).

Turns are first come, first served. A reload's settle is part of its turn, in its own
state: another reload arriving then ends the settle early, a rollback rolls it back.
The stop waits for the operation in progress (bounded), then keeps the slot for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import AsyncIterator


class Op(enum.Enum):
    IDLE = "idle"
    STARTING = "starting"
    RELOADING = "reloading"
    SETTLING = "settling"  # a new generation serves; the previous one is kept warm
    ROLLING_BACK = "rolling back"
    RESTARTING = "restarting"  # a crashed or unhealthy program
    STOPPING = "stopping"


MOVES: dict[Op, frozenset[Op]] = {
    Op.IDLE: frozenset({Op.STARTING, Op.RELOADING, Op.ROLLING_BACK, Op.RESTARTING,
                        Op.STOPPING}),
    Op.STARTING: frozenset({Op.IDLE, Op.STOPPING}),
    Op.RELOADING: frozenset({Op.SETTLING, Op.IDLE, Op.STOPPING}),
    Op.SETTLING: frozenset({Op.IDLE, Op.STOPPING}),
    Op.ROLLING_BACK: frozenset({Op.IDLE, Op.STOPPING}),
    Op.RESTARTING: frozenset({Op.IDLE, Op.STOPPING}),
    Op.STOPPING: frozenset(),
}


class OperationError(RuntimeError):
    pass


class Operations:
    def __init__(self) -> None:
        self.state = Op.IDLE
        self._turn = asyncio.Lock()
        self._task: asyncio.Task[object] | None = None

    @property
    def idle(self) -> bool:
        return self.state is Op.IDLE and not self._turn.locked()

    def _move(self, new: Op) -> None:
        if new not in MOVES[self.state]:
            raise OperationError(f"operation {self.state.value} -> {new.value} not allowed")
        self.state = new

    @contextlib.asynccontextmanager
    async def turn(self, op: Op) -> AsyncIterator[None]:
        """Wait for the turn, then hold it as ``op`` until the block ends."""
        async with self._turn:
            if self.state is Op.STOPPING:
                raise OperationError("fnud is stopping")
            self._move(op)
            self._task = asyncio.current_task()
            try:
                yield
            finally:
                self._task = None
                self._end()

    def _end(self) -> None:
        if self.state is not Op.STOPPING:  # the stop keeps the slot
            self._move(Op.IDLE)

    def settling(self) -> None:
        """The reload holding the turn is in its settle now."""
        self._move(Op.SETTLING)

    async def stop(self, budget: float) -> bool:
        """Take the slot for good (the daemon stops): wait up to ``budget`` seconds for
        the operation in progress, then cut it short. False when it had to be cut."""
        try:
            await asyncio.wait_for(self._turn.acquire(), budget)
        except asyncio.TimeoutError:
            if self._task is not None:
                self._task.cancel()
            self.state = Op.STOPPING
            return False
        self._move(Op.STOPPING)
        return True
