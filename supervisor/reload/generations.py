"""Generation reloads: a new uWSGI master beside the serving one, on the held sockets.

start N+1 (every worker accepting with the app loaded) -> it serves, N is paused (warm)
-> settle: N+1 is watched (master, worker deaths, health probes, 5xx share) -> N is
stopped gracefully, or resumed while N+1 is stopped (rolled back). The verdict is
policy.settle_verdict's; this module only carries it out.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from supervisor.control.server import Emit
from supervisor.health import probe as healthprobe
from supervisor.logs import logsetup
from supervisor.policy import restart as policy
from supervisor.process.program import Program
from supervisor.process.states import State
from supervisor.runtime.release import Release
from supervisor.stack.stack import Stack
from supervisor.uwsgi import driver as uwsgi

Probe = Callable[[str, float, Path], Awaitable[healthprobe.ProbeResult]]
SETTLE_TICK = 0.25
SETTLE_PROBE_EVERY = 0.5  # faster than [health] interval: the settle is short


class SwitchError(Exception):
    """The new generation never served; the old one kept serving."""


class NothingToRollBack(SwitchError):
    pass


class RolledBack(Exception):
    """The new generation served and failed; the old one serves again."""


@dataclass
class RequestCounter:
    """Answers of one generation's workers, from uWSGI's request log lines."""

    pids: set[int] = field(default_factory=set)
    requests: int = 0
    errors: int = 0

    def observe(self, line: str) -> None:
        seen = uwsgi.request_status(line)
        if seen is not None and seen[0] in self.pids:
            self.requests += 1
            self.errors += seen[1] >= 500


def point_link(link: str, target: str) -> None:
    """Atomically make ``link`` point at ``target``."""
    tmp = f"{link}.fnud-tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    os.symlink(target, tmp)
    os.replace(tmp, link)


class Generations:
    def __init__(self, stack: Stack, probe_fn: Probe = healthprobe.probe) -> None:
        self.stack = stack
        self.probe = probe_fn
        # retired, to roll back to; a restarted daemon reads what the last one retired
        self.previous = Release.load(stack.paths.previous_release)
        self.warm: Program | None = None  # paused during a settle
        self.end_settle = asyncio.Event()  # another reload waits: end it early
        self.rollback_asked = asyncio.Event()
        self.log = logsetup.get("generations")

    # -- the steps -----------------------------------------------------------------

    async def reload(
        self, emit: Emit, switched: asyncio.Event | None = None
    ) -> tuple[int, str]:
        """Start, switch (then ``switched`` is set), settle, retire. Raises SwitchError
        or RolledBack."""
        old = self.stack.uwsgi
        new = await self.start_next(emit)
        await self.switch(new, old, emit)
        if switched is not None:
            switched.set()
        verdict = await self.settle(new, emit)
        if verdict:
            await self.roll_back(new, emit)
            raise RolledBack(f"generation {self._number(new)} rolled back: {verdict}")
        await self.retire(emit)
        return len(new.children()), f"generation {self._number(new)}"

    def _number(self, prog: Program) -> int:
        return self.stack.driver_of(prog).generation

    async def start_next(self, emit: Emit, source: Release | None = None) -> Program:
        stack = self.stack
        number = max(self._number(p) for p in (stack.uwsgi, *stack.others)) + 1
        new = stack.make_generation(number)
        driver = stack.driver_of(new)
        driver.require_all = True
        driver.pinned = True
        if source is not None:
            driver.source, driver.link = source.source, source.link
        new.echo = False
        new.start_timeout = 1e9  # the deadline is ours: a stuck one is stopped gracefully
        stack.others.append(new)
        timeout = stack.config.fnud.start_timeout
        await emit(f"generation {number}: starting uWSGI on the held sockets")
        await new.spawn()
        await new.wait_state([State.RUNNING, State.FATAL, State.STOPPED], timeout)
        if new.state is State.RUNNING:
            await emit(f"generation {number}: every worker accepts ({driver.release})")
            return new
        why = new.last_exit or new.why or "no answer"
        await new.stop(time.monotonic() + stack.config.fnud.stop_timeout)
        stack.forget(new)
        raise SwitchError(f"generation {number} not ready after {timeout:g}s: {why}")

    async def switch(self, new: Program, old: Program, emit: Emit) -> None:
        stack = self.stack
        stack.promote(new)
        self.warm = None
        if old.running:
            try:
                await stack.driver_of(old).pause(True, old.pid)
                self.warm = old
            except OSError as exc:  # it cannot be kept warm: retire it now
                self.log.warning("cannot pause the previous generation", error=str(exc))
        new.start_timeout = stack.config.fnud.start_timeout  # for its respawns
        stack.save_state()
        await emit(
            f"generation {self._number(new)} serving; generation {self._number(old)} "
            + ("paused (warm)" if self.warm else "stopping")
        )
        if self.warm is None:
            await self._stop(old)

    async def settle(self, new: Program, emit: Emit) -> str:
        """Watch the new generation for ``[reload] settle`` seconds; why to roll back,
        or '' (also when ended early by another reload)."""
        cfg = self.stack.config
        if self.warm is None or cfg.reload.settle <= 0:
            return ""
        await emit(f"settling for {cfg.reload.settle:g}s (previous generation warm)")
        limits = policy.SettleLimits(max_error_ratio=cfg.reload.max_error_ratio)
        counter = RequestCounter()
        new.observers.append(counter.observe)
        stats_path = self.stack.driver_of(new).stats
        base: int | None = None
        deaths = failures = 0
        deadline = time.monotonic() + cfg.reload.settle
        next_probe = time.monotonic()
        try:
            while time.monotonic() < deadline:
                if self.rollback_asked.is_set():
                    return "fnud rollback asked for it"
                if self.end_settle.is_set():
                    await emit("settle ended early: another reload is waiting")
                    return ""
                with contextlib.suppress(OSError, ValueError, asyncio.TimeoutError):
                    stats = await uwsgi.read_stats(stats_path, timeout=1.0)
                    respawns = sum(w.respawns for w in stats.workers)
                    base = respawns if base is None else base
                    deaths = respawns - base
                    counter.pids = {w.pid for w in stats.live_workers}
                if time.monotonic() >= next_probe:
                    result = await self.probe(cfg.health.url, cfg.health.timeout, stats_path)
                    failed = not result.ok and result.culprit != "nginx"
                    failures = failures + 1 if failed else 0
                    next_probe = time.monotonic() + SETTLE_PROBE_EVERY
                new.drain()
                verdict = policy.settle_verdict(
                    policy.SettleFacts(
                        new.running, deaths, failures, counter.requests, counter.errors
                    ),
                    limits,
                )
                if verdict:
                    return verdict
                await self._pause_tick()
        finally:
            new.observers.remove(counter.observe)
        return ""

    async def _pause_tick(self) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._any_request(), SETTLE_TICK)

    async def _any_request(self) -> None:
        waits = [asyncio.ensure_future(e.wait()) for e in (self.end_settle, self.rollback_asked)]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def roll_back(self, new: Program, emit: Emit) -> None:
        """The warm generation serves again; the new one stops gracefully."""
        old = self.warm
        assert old is not None
        if not old.running:  # it died while paused: keep the new one, say so
            self.warm = None
            self.stack.forget(old)
            raise SwitchError(
                f"generation {self._number(new)} should roll back, but generation "
                f"{self._number(old)} died during the settle: keeping the new one"
            )
        self.warm = None
        self.stack.promote(old)
        await self.stack.driver_of(old).pause(False, old.pid)
        await emit(f"generation {self._number(old)} resumed; stopping generation "
                   f"{self._number(new)}")
        self.stack.save_state()
        await self._stop(new)

    async def retire(self, emit: Emit) -> None:
        """The settle passed: stop the warm generation, remember it for `fnud rollback`."""
        old, self.warm = self.warm, None
        if old is None:
            return
        driver = self.stack.driver_of(old)
        if driver.source is not None:
            self.previous = Release(
                driver.generation, driver.release, driver.source,
                driver.link,
            )
            try:
                self.previous.save(self.stack.paths.previous_release)
            except OSError as exc:  # rollback still works until this daemon stops
                self.log.warning("previous release not saved", error=str(exc))
        await emit(f"generation {driver.generation} stopping (settle passed)")
        await self._stop(old)

    async def _stop(self, prog: Program) -> None:
        await prog.stop(time.monotonic() + self.stack.config.fnud.stop_timeout)
        self.stack.forget(prog)

    # -- fnud rollback -------------------------------------------------------------

    async def rollback(self, emit: Emit) -> str:
        """Back to the previous release: resume it when warm (a settle in progress is
        ended by the caller through ``rollback_asked``), else start it again from its
        pinned directory; point the release symlink back."""
        target = self.previous
        if target is None:
            raise NothingToRollBack("nothing to roll back to: no previous generation")
        current = self.stack.uwsgi
        new = await self.start_next(emit, source=target)
        await self.switch(new, current, emit)
        link = target.link
        if link is not None and os.path.islink(link[0]):
            point_link(*link)  # disk and service agree again
            await emit(f"{link[0]} -> {link[1]} again")
        await self.retire(emit)  # the one we left becomes the one to go back to
        return f"generation {self._number(new)} serves {target.directory}"

