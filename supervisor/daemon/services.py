"""What runs beside the stack once it serves: the file triggers, the health probe, the
metrics endpoint and the status page. Each door here reaches fnud's operations only
through the command registry."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from supervisor.daemon import triggers
from supervisor.daemon.commands import Registry
from supervisor.daemon.events import Enqueue
from supervisor.daemon.operations import Operations
from supervisor.daemon.phase import Phase
from supervisor.daemon.restarts import Restarts
from supervisor.health.loop import ProbeLoop
from supervisor.logs import logsetup
from supervisor.process.program import Program
from supervisor.reload.generations import Generations
from supervisor.reload.reloader import Reloader
from supervisor.reload.request import OK, ReloadResult
from supervisor.stack.plan import StackError
from supervisor.stack.stack import Stack
from supervisor.web.page import Hooks
from supervisor.web.site import Site

Spawn = Callable[[Coroutine[Any, Any, Any], str], Any]
PROBLEM_CHECK = 5.0  # seconds between looks for problems (a full log disk)


class Services:
    def __init__(
        self,
        stack: Stack,
        ops: Operations,
        phase: Callable[[], Phase],
        restarts: Restarts,
        reloader: Reloader,
        generations: Generations,
        registry: Registry,
        enqueue: Enqueue,
        spawn: Spawn,
        problems: Callable[[], list[str]] = list,
    ) -> None:
        self.stack = stack
        self.problems = problems
        self.ops = ops
        self.phase = phase
        self.reloader = reloader
        self.generations = generations
        self.registry = registry
        self.enqueue = enqueue
        self.spawn = spawn
        self.site = Site(stack.paths.root)
        reloader.listeners.append(lambda result: self.site.history.record(result.as_dict()))
        self.probe = ProbeLoop(
            lambda: self.stack.config.health, self._probing_allowed, self._culprits,
            restarts.restart, lambda: self.stack.app.driver.workers(),
        )
        self.watcher: Any = None  # triggers.watch.Watcher, with [watch] on (watchdog)
        self.metrics: Any = None  # web.metrics.MetricsServer, imported only when configured
        self.log = logsetup.get("daemon")

    async def start(self, status: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        touch = triggers.touch_watcher(self.stack, self.enqueue)
        if touch is not None:
            self.spawn(touch, "touch")
        self.watcher = triggers.file_watcher(self.stack, self.enqueue)
        self.reloader.listeners.append(self._rewatch)
        if self.stack.config.health.interval > 0:
            self.spawn(self.probe.run(), "probe")
        self.spawn(self._watch_problems(), "problems")
        await self._start_metrics()
        await self._start_page(status)

    async def close(self) -> None:
        for server in (self.metrics, self.site):
            if server is not None:
                await server.close()

    def stop_watching(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()

    def watch_status(self, busy: bool) -> dict[str, Any]:
        """``busy``: a reload waits or runs (a save is then pending too)."""
        if self.watcher is None:
            return {"enabled": False}
        return {
            "enabled": True,
            "mode": "polling" if self.watcher.polling else "inotify",
            # a burst still in its debounce window, or a reload waiting or running
            "pending": self.watcher.debouncer.pending or busy,
        }

    async def _watch_problems(self) -> None:
        """Say in the log when a problem begins (a full log disk...) and when it ends."""
        known: dict[str, str] = {}  # what a problem is (before its figures) -> its line
        while True:
            now = {problem.split(" (")[0]: problem for problem in self.problems()}
            for key in sorted(now.keys() - known.keys()):
                self.log.warning("problem", detail=now[key])
            for key in sorted(known.keys() - now.keys()):
                self.log.info("problem over", detail=known[key])
            known = now
            await asyncio.sleep(PROBLEM_CHECK)

    # -- the probe -------------------------------------------------------------------

    def _probing_allowed(self) -> bool:
        return (
            self.phase() is Phase.RUNNING
            and self.ops.idle  # never during a reload (or another restart)
            and all(prog.running for prog in self.stack.programs.values())
        )

    def _culprits(self) -> dict[str, Program[Any]]:
        return {"app": self.stack.app, "nginx": self.stack.nginx}

    # -- [watch] follows releases ------------------------------------------------------

    def _rewatch(self, result: ReloadResult) -> None:
        """[watch] follows the app directory by its configured path: after a release
        symlink switch it watches the new release."""
        if self.watcher is None or result.result != OK:
            return
        try:
            if self.watcher.rules.code_dirs == triggers.code_dirs(self.stack):
                return
        except StackError:
            return
        self.watcher.stop()
        self.watcher = triggers.file_watcher(self.stack, self.enqueue)

    # -- metrics and the status page ---------------------------------------------------

    async def _start_metrics(self) -> None:
        config = self.stack.config
        listen, address = config.metrics.listen, config.metrics.address
        if address is None:
            return
        from supervisor.web.metrics import MetricsServer, Source

        self.metrics = server = MetricsServer(Source(
            programs=lambda: self.stack.programs,
            reload_counts=self.reload_counts,
            probe_failures=lambda: self.probe.total_failures,
            generation=lambda: (self.stack.generation, self.generations.warm is not None),
            workers=lambda: self.stack.app.driver.workers(),
            server=self.stack.app.name,
        ))
        self.reloader.listeners.append(
            lambda result: server.observe_reload(result.result, result.duration)
        )
        if listen != config.web.listen:  # else the status page's server answers it
            try:
                await server.start(address.host, address.port)
            except OSError as exc:
                self.log.error("cannot serve metrics", listen=listen, error=exc.strerror)

    def reload_counts(self) -> dict[str, int]:
        return {k: self.reloader.counts[k] for k in ("ok", "refused", "failed", "rolled_back")}

    async def _start_page(self, status: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        config = self.stack.config
        shared = config.web.listen and config.web.listen == config.metrics.listen
        hooks = Hooks(
            status=status,
            reload=lambda: self.registry.start(
                "reload", {"reason": "reload button on the status page", "trigger": "web"}
            ),
            rollback=lambda: self.registry.start(
                "rollback", {"reason": "rollback button on the status page", "trigger": "web"}
            ),
            token=lambda: self.stack.config.web.token,  # a reload may change it
            metrics=self.metrics.render if shared and self.metrics is not None else None,
        )
        await self.site.start(config.web.listen, hooks, self.stack.answers)
