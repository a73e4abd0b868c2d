"""The settle: after a new generation took over, watch it for ``[reload] settle`` seconds
while the previous one stays warm; gather the facts, let policy.settle decide.

Facts: is its master alive, how many of its workers died (respawns it reports), health
probes failed in a row, its answers and their 5xx share (from its request log lines).
The clock, the fact sources and the wait between looks are injected, so the loop is
tested without processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from supervisor.appserver.port import WorkersUnknown
from supervisor.appserver.workers import Stats
from supervisor.health.probe import ProbeResult
from supervisor.policy.settle import SettleFacts, SettleLimits, settle_verdict

TICK = 0.25  # between looks
PROBE_EVERY = 0.5  # faster than [health] interval: the settle is short
ROLLBACK_ASKED = "fnud rollback asked for it"


@dataclass
class RequestCounter:
    """Answers of one generation's workers, from its log lines."""

    answer: Callable[[str], tuple[int, int] | None]  # (pid, status) of a request line
    pids: set[int] = field(default_factory=set)
    requests: int = 0
    errors: int = 0

    def observe(self, line: str) -> None:
        seen = self.answer(line)
        if seen is not None and seen[0] in self.pids:
            self.requests += 1
            self.errors += seen[1] >= 500


@dataclass
class Interrupts:
    """What can end a settle early: another reload waiting (keep the new generation),
    or ``fnud rollback`` (roll it back)."""

    end: asyncio.Event = field(default_factory=asyncio.Event)
    rollback: asyncio.Event = field(default_factory=asyncio.Event)

    def clear(self) -> None:
        self.end.clear()
        self.rollback.clear()

    async def wait(self, seconds: float) -> None:
        """Up to ``seconds``, less if an interrupt comes."""
        waits = [asyncio.ensure_future(e.wait()) for e in (self.end, self.rollback)]
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for each in waits:
                each.cancel()


@dataclass
class Watch:
    """One new generation's facts since the switch."""

    workers: Callable[[], Awaitable[Stats]]  # raises WorkersUnknown
    probe: Callable[[], Awaitable[ProbeResult]]
    alive: Callable[[], bool]
    drain: Callable[[], None]  # take in the log lines written so far
    counter: RequestCounter
    clock: Callable[[], float] = time.monotonic
    base: int | None = None  # respawns counted when the watch began
    deaths: int = 0
    failures: int = 0  # probes failed in a row (nginx's own failures do not count)
    next_probe: float = 0.0

    async def look(self) -> SettleFacts:
        with contextlib.suppress(WorkersUnknown):
            stats = await self.workers()
            respawns = stats.respawns
            self.base = respawns if self.base is None else self.base
            self.deaths = respawns - self.base
            self.counter.pids = {w.pid for w in stats.live_workers}
        if self.clock() >= self.next_probe:
            result = await self.probe()
            failed = not result.ok and result.culprit != "nginx"
            self.failures = self.failures + 1 if failed else 0
            self.next_probe = self.clock() + PROBE_EVERY
        self.drain()
        return SettleFacts(
            self.alive(), self.deaths, self.failures,
            self.counter.requests, self.counter.errors,
        )


async def settle(
    watch: Watch,
    seconds: float,
    limits: SettleLimits,
    interrupts: Interrupts,
    wait: Callable[[float], Awaitable[None]] | None = None,
) -> str:
    """Why to roll back ('' when the settle passed or another reload ended it early)."""
    wait = wait or interrupts.wait
    deadline = watch.clock() + seconds
    while watch.clock() < deadline:
        if interrupts.rollback.is_set():
            return ROLLBACK_ASKED
        if interrupts.end.is_set():
            return ""
        verdict = settle_verdict(await watch.look(), limits)
        if verdict:
            return verdict
        await wait(TICK)
    return ""
