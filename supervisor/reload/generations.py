"""Generation reloads: a new app-server master beside the serving one, on the held sockets.

start N+1 (every worker accepting with the app loaded) -> it serves, N is paused (warm)
-> settle: N+1 is watched (settle.py) -> N is stopped gracefully, or resumed while N+1
is stopped (rolled back). The verdict is policy.settle's; this module carries it out.

A generation whose workers cannot pause (appserver.port.CannotPause) is stopped at the
switch instead; the settle still runs, and a rollback starts its pinned release again
(cold: a new master, its workers loading the app).

The generations themselves come from an injected factory (the stack's in production),
and the clock and the wait between settle looks are injected too, so switching, settling
and rolling back are tested without processes.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Awaitable, Callable

from supervisor.appserver.port import AppServerError
from supervisor.common.progress import Emit
from supervisor.health.probe import ProbeResult, probe
from supervisor.logs import logsetup
from supervisor.policy.settle import SettleLimits
from supervisor.process.states import State
from supervisor.reload import settle
from supervisor.reload.request import Failed, RolledBack
from supervisor.runtime.release import Release
from supervisor.stack.stack import AppProgram, Stack

#: the generation ``number``, loading ``source`` when given (else the ini on disk)
Factory = Callable[[int, Release | None], AppProgram]
Probe = Callable[[AppProgram], Awaitable[ProbeResult]]


class SwitchError(Failed):
    """The new generation never served; the old one kept serving."""


def point_link(link: str, target: str) -> None:
    """Atomically make ``link`` point at ``target``."""
    tmp = f"{link}.fnud-tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    os.symlink(target, tmp)
    os.replace(tmp, link)


class Generations:
    def __init__(
        self,
        stack: Stack,
        make: Factory | None = None,
        probe_fn: Probe | None = None,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[float], Awaitable[None]] | None = None,
        on_settle: Callable[[], None] = lambda: None,
    ) -> None:
        """``on_settle``: called when a settle begins (the daemon's operation is then
        "settling": another reload ends it early, a rollback rolls it back)."""
        self.stack = stack
        self.on_settle = on_settle
        self.make = make or (lambda number, source: stack.make_generation(number, source, True))
        self.probe = probe_fn or self._probe
        self.clock = clock
        self.interrupts = settle.Interrupts()
        self.wait = wait or self.interrupts.wait
        # retired, to roll back to; a restarted daemon reads what the last one retired
        previous = Release.load(stack.paths.previous_release)
        self.previous = previous if previous and stack.plan.loads(previous) else None
        self.warm: AppProgram | None = None  # paused during a settle
        self.cold: Release | None = None  # stopped at the switch: what a rollback restarts
        self.log = logsetup.get("generations")

    async def _probe(self, prog: AppProgram) -> ProbeResult:
        health = self.stack.config.health
        return await probe(health.url, health.timeout, prog.driver.workers)

    def _deadline(self) -> float:
        """A stop's deadline (the programs' own clock, not the settle's)."""
        return time.monotonic() + self.stack.config.fnud.stop_timeout

    # -- the steps -----------------------------------------------------------------

    async def reload(self, emit: Emit, switched: Callable[[], None]) -> tuple[int, str]:
        """Start, switch (then ``switched()``), settle, retire. Raises SwitchError or
        RolledBack."""
        old = self.stack.app
        new = await self.start_next(emit)
        await self.switch(new, old, emit)
        switched()
        verdict = await self.settle(new, emit)
        if verdict:
            await self.roll_back(new, emit)
            raise RolledBack(f"generation {new.driver.number} rolled back: {verdict}")
        await self.retire(emit)
        return len(new.children()), f"generation {new.driver.number}"

    async def start_next(self, emit: Emit, source: Release | None = None) -> AppProgram:
        stack = self.stack
        number = max(p.driver.number for p in (stack.app, *stack.others)) + 1
        new = self.make(number, source)
        new.echo = False
        new.start_timeout = 1e9  # the deadline is ours: a stuck one is stopped gracefully
        stack.others.append(new)
        timeout = stack.config.fnud.start_timeout
        await emit(f"generation {number}: starting {new.driver.display} on the held sockets")
        await new.spawn()
        await new.wait_state([State.RUNNING, State.FATAL, State.STOPPED], timeout)
        if new.state is State.RUNNING:
            await emit(f"generation {number}: every worker accepts ({new.driver.release})")
            return new
        why = new.last_exit or new.why or "no answer"
        await new.stop(self._deadline())
        stack.forget(new)
        raise SwitchError(f"generation {number} not ready after {timeout:g}s: {why}")

    async def switch(self, new: AppProgram, old: AppProgram, emit: Emit) -> None:
        stack = self.stack
        stack.promote(new)
        self.warm, self.cold = None, None
        how = "stopping"
        if old.running:
            try:
                await old.driver.pause(old.pid)
                self.warm, how = old, "paused (warm)"
            except (OSError, AppServerError) as exc:  # it cannot be kept warm: stop it now
                self.cold = old.driver.pinned()
                if self.cold is not None:
                    how = "stopping (a rollback would start it again, cold)"
                self.log.info("previous generation not kept warm", why=str(exc))
        new.start_timeout = stack.config.fnud.start_timeout  # for its respawns
        stack.save_state()
        await emit(
            f"generation {new.driver.number} serving; generation {old.driver.number} {how}"
        )
        if self.warm is None:
            await self._stop(old)

    async def settle(self, new: AppProgram, emit: Emit) -> str:
        """Watch the new generation for ``[reload] settle`` seconds; why to roll back,
        or '' (also when ended early by another reload)."""
        cfg = self.stack.config
        if (self.warm is None and self.cold is None) or cfg.reload.settle <= 0:
            return ""
        self.on_settle()
        kept = "warm" if self.warm is not None else "stopped, its release pinned"
        await emit(f"settling for {cfg.reload.settle:g}s (previous generation {kept})")
        counter = settle.RequestCounter(new.driver.answer)
        watch = settle.Watch(
            workers=new.driver.workers, probe=lambda: self.probe(new),
            alive=lambda: new.running, drain=new.drain, counter=counter, clock=self.clock,
        )
        new.observers.append(counter.observe)
        try:
            verdict = await settle.settle(
                watch, cfg.reload.settle,
                SettleLimits(max_error_ratio=cfg.reload.max_error_ratio),
                self.interrupts, self.wait,
            )
        finally:
            new.observers.remove(counter.observe)
        if not verdict and self.interrupts.end.is_set():
            await emit("settle ended early: another reload is waiting")
        return verdict

    async def roll_back(self, new: AppProgram, emit: Emit) -> None:
        """The warm generation serves again (or its release, started cold); the new one
        stops gracefully."""
        old = self.warm
        if old is None:
            await self._roll_back_cold(new, emit)
            return
        self.warm = None
        if not old.running:  # it died while paused: keep the new one, say so
            self.stack.forget(old)
            raise SwitchError(
                f"generation {new.driver.number} should roll back, but generation "
                f"{old.driver.number} died during the settle: keeping the new one"
            )
        self.stack.promote(old)
        await old.driver.resume(old.pid)
        await emit(f"generation {old.driver.number} resumed; stopping generation "
                   f"{new.driver.number}")
        self.stack.save_state()
        await self._stop(new)

    async def _roll_back_cold(self, new: AppProgram, emit: Emit) -> None:
        """Start the release the previous generation ran, pinned, beside the new one;
        switch to it once every worker accepts; stop the new one."""
        target, self.cold = self.cold, None
        assert target is not None
        await emit(f"starting generation {target.number}'s release again: {target.directory}")
        again = await self.start_next(emit, source=target)
        self.stack.promote(again)
        again.start_timeout = self.stack.config.fnud.start_timeout
        self.stack.save_state()
        await emit(f"generation {again.driver.number} serves {target.directory}; stopping "
                   f"generation {new.driver.number}")
        await self._stop(new)

    async def retire(self, emit: Emit) -> None:
        """The settle passed: stop the warm generation, remember it for `fnud rollback`."""
        old, self.warm = self.warm, None
        cold, self.cold = self.cold, None
        pinned = old.driver.pinned() if old is not None else cold
        if pinned is not None:
            self.previous = pinned
            try:
                pinned.save(self.stack.paths.previous_release)
            except OSError as exc:  # rollback still works until this daemon stops
                self.log.warning("previous release not saved", error=str(exc))
        if old is None:
            return
        await emit(f"generation {old.driver.number} stopping (settle passed)")
        await self._stop(old)

    async def _stop(self, prog: AppProgram) -> None:
        await prog.stop(self._deadline())
        self.stack.forget(prog)

    # -- fnud rollback -------------------------------------------------------------

    async def rollback(self, target: Release, emit: Emit) -> str:
        """Back to ``target`` (the previous release, preflighted by the caller): start
        it again from its pinned directory, then point the release symlink back. (A
        settle in progress is rolled back by its own reload instead, through
        ``interrupts.rollback``.)"""
        current = self.stack.app
        new = await self.start_next(emit, source=target)
        await self.switch(new, current, emit)
        link = target.link
        if link is not None and os.path.islink(link[0]):
            point_link(*link)  # disk and service agree again
            await emit(f"{link[0]} -> {link[1]} again")
        await self.retire(emit)  # the one we left becomes the one to go back to
        return f"generation {new.driver.number} serves {target.directory}"
