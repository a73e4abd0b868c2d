"""The gated reload, orchestrated: nothing is signalled until everything that can be
checked passed.

Order: the gate (re-read fnud.toml, lint, ``nginx -t``, import the app in a fresh
interpreter); only then nginx's own reload (when its files changed: nginx/reload.py) and
the app server's (a new generation: generations.py; or in place: the adapter's). A
refused reload leaves every process as it was.

One reload runs at a time: the caller holds the daemon's operation slot around
:meth:`Reloader.run`; requests are merged before they get here.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Awaitable, Callable
from typing import Any

from supervisor.appserver.port import AppServerError
from supervisor.common.progress import Emit
from supervisor.logs import logsetup
from supervisor.nginx import reload as nginx_reload
from supervisor.process.program import Program
from supervisor.process.states import State
from supervisor.reload import gate
from supervisor.reload.generations import Generations
from supervisor.reload.request import (
    FAILED,
    OK,
    REFUSED,
    Failed,
    Refused,
    ReloadRequest,
    ReloadResult,
    outcome_of,
)
from supervisor.stack.stack import Stack
from supervisor.systemd.notify import Notifier

#: starts a program that is not running (the daemon's respawn); False: not now (stopping)
Restart = Callable[[Program[Any]], Awaitable[bool]]
#: what a failed reload may raise besides its verdicts: a master gone mid-way, a fifo...
MISHAPS = (OSError, ValueError, RuntimeError, AppServerError, nginx_reload.NginxReloadFailed)


class Reloader:
    def __init__(
        self,
        stack: Stack,
        the_gate: gate.Gate,
        notifier: Notifier,
        restart: Restart,
        generations: Generations,
    ) -> None:
        self.stack = stack
        self.gate = the_gate
        self.notifier = notifier
        self.restart = restart
        self.generations = generations
        self.last: ReloadResult | None = None
        self.listeners: list[Callable[[ReloadResult], None]] = []
        self.counts: collections.Counter[str] = collections.Counter()
        self.log = logsetup.get("reload")

    async def run(
        self, request: ReloadRequest, emit: Emit, switched: Callable[[], None]
    ) -> ReloadResult:
        """One gated reload (or rollback), start to end; ``switched()`` once a new
        generation serves (the settle may follow)."""
        begun, at = time.monotonic(), time.time()
        self.notifier.reloading()
        self.generations.interrupts.clear()
        self.log.info("reload begins", reason=request.reason)
        replaced, nginx_done = 0, False
        try:
            outcome = OK
            message, replaced, nginx_done = await self._run(request, emit, switched)
        except Exception as exc:
            known = outcome_of(exc)
            if known is None and not isinstance(exc, MISHAPS):
                raise
            if known is None:
                self.log.exception("reload crashed")
            outcome, message = known or FAILED, str(exc) if known else repr(exc)
        finally:
            self.notifier.ready()
        return self._record(ReloadResult(
            outcome, message, request.reason, at, time.monotonic() - begun,
            replaced, nginx_done, request.trigger,
        ))

    def ended(self, request: ReloadRequest, outcome: str, message: str) -> ReloadResult:
        """A request that did not run to its end: turned away before it began, or cut
        short (fnud is stopping)."""
        return self._record(ReloadResult(
            outcome, message, request.reason, time.time(), trigger=request.trigger
        ))

    def _record(self, result: ReloadResult) -> ReloadResult:
        """Remember, count, tell the listeners, log and report one result."""
        if result.result != REFUSED:
            self.stack.save_state()
        self.last = result
        self.counts[result.result] += 1
        for listener in self.listeners:
            listener(result)
        level = "info" if result.result == OK else "error"
        getattr(self.log, level)(
            f"reload {result.result}", detail=result.message, duration=round(result.duration, 2)
        )
        self.notifier.status(f"last reload {result.result}: {result.message}")
        return result

    async def _run(
        self, request: ReloadRequest, emit: Emit, switched: Callable[[], None]
    ) -> tuple[str, int, bool]:
        if request.rollback:
            return await self._rollback(emit)
        stack = self.stack
        try:
            passed = await self.gate.run(
                gate.Request(
                    nginx=request.nginx, app=request.app and not stack.config.balancer,
                    reread=True,
                ),
                emit,
            )
        except gate.Refused as exc:
            raise Refused(str(exc)) from None
        stack.apply(passed.plan)  # every check passed: from here on the new plan is in force
        parts = []
        nginx_done = False
        if passed.conf is not None:
            nginx_done = await self._nginx(request.force_nginx, emit)
            parts.append("nginx reloaded" if nginx_done else "nginx unchanged")
        replaced = 0
        if passed.spec is not None:
            replaced, how = await self._app(emit, switched)
            parts.append(f"{replaced} {stack.app.driver.display} workers replaced ({how})")
        return ", ".join(parts), replaced, nginx_done

    async def _rollback(self, emit: Emit) -> tuple[str, int, bool]:
        stack = self.stack
        if not stack.plan.generation_mode:
            raise Refused(f"fnud rollback needs {stack.config.generation_key}")
        target = self.generations.previous
        if target is None:
            raise Refused("nothing to roll back to: no previous generation")
        try:  # only code that passes the gate runs in a worker, going back too
            await self.gate.release(target, emit)
        except gate.Refused as exc:
            raise Refused(f"the previous release {target.directory}: {exc}") from None
        message = await self.generations.rollback(target, emit)
        return message, len(stack.app.children()), False

    async def _nginx(self, force: bool, emit: Emit) -> bool:
        """Reload nginx when its files changed (or ``force``); True when it did."""
        stack = self.stack
        digest = stack.plan.nginx_digest()
        if digest == stack.nginx_digest and not force:
            return False
        prog = stack.nginx
        if not await self._ensure_running(prog, emit):
            try:
                await nginx_reload.reload(prog, emit, stack.config.nginx.reload_timeout)
            except nginx_reload.NginxReloadFailed as exc:
                raise Failed(str(exc)) from None
        stack.resync_nginx_sockets()
        self.notifier.store_fds(stack.held_fds())
        stack.nginx_digest = digest
        return True

    async def _app(self, emit: Emit, switched: Callable[[], None]) -> tuple[int, str]:
        stack = self.stack
        if stack.plan.generation_mode and stack.app.state is not State.STARTING:
            replaced, how = await self.generations.reload(emit, switched)
            stack.ini_digest = stack.plan.ini_digest()
            return replaced, how
        return await self._in_place(emit)

    async def _in_place(self, emit: Emit) -> tuple[int, str]:
        """The app server's own reload of its running master (chain mode)."""
        stack = self.stack
        prog = stack.app
        digest = stack.plan.ini_digest()
        if await self._ensure_running(prog, emit):
            stack.ini_digest = digest
            return len((await prog.driver.workers()).live_workers), "started"
        now = stack.plan.release_dir()
        if prog.driver.release and now != prog.driver.release:
            raise Failed(
                f"the app directory now resolves to {now}, but {prog.driver.display} runs from "
                f"{prog.driver.release}: a chain reload would keep loading the old "
                f"release; use {stack.config.generation_key} (or fnud stop && fnud start)"
            )

        def alive() -> str:
            if prog.running:
                return ""
            return f"{prog.state.value} during reload: {prog.last_exit or prog.why}"

        replaced, how = await prog.driver.reload_in_place(
            prog.pid, alive, emit, stack.config.app_reload_timeout,
            changed=digest != stack.ini_digest,
        )
        stack.ini_digest = digest
        return replaced, how

    async def _ensure_running(self, prog: Program[Any], emit: Emit) -> bool:
        """A program that is not RUNNING is (re)started instead (one already STARTING
        is waited for); True if it was not running."""
        if prog.state is State.RUNNING:
            return False
        if prog.state is State.STARTING:
            await emit(f"{prog.name} is STARTING: waiting for it")
        else:
            await emit(f"{prog.name} is {prog.state.value}: starting it")
            if not await self.restart(prog):
                raise Failed(f"{prog.name} not restarted: fnud is stopping")
        ok = await prog.wait_state(
            [State.RUNNING, State.FATAL, State.BACKOFF], self.stack.config.fnud.start_timeout
        )
        if not ok or not prog.running:
            raise Failed(f"{prog.name} did not start: {prog.last_exit or prog.why}")
        return True
