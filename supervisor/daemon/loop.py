"""The daemon: one asyncio loop, one queue of typed events, one state machine per program.

Signal handlers, watchers and timers only put events on the queue; ``run`` takes them
off one at a time and calls the handler that ``HANDLERS`` names for the event's type.
Decisions live elsewhere (policy.py: what an exit means; gate.py: whether a change may
go live); long operations (start, reload, stop) run as tasks serialised by one lock,
so a reload never interleaves with another reload or with a stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

from supervisor.config.schema import Config
from supervisor.control.server import Emit, Server
from supervisor.daemon import commands, startup, status, triggers
from supervisor.health.loop import ProbeLoop
from supervisor.logs import logsetup
from supervisor.logs.logfile import DaemonLog, reopen_all
from supervisor.policy import restart as policy
from supervisor.process.events import (
    ALL,
    Event,
    Exited,
    Heartbeat,
    Ready,
    ReloadEvent,
    Retry,
    SignalEvent,
)
from supervisor.process.program import Program
from supervisor.process.states import Phase, State, check_phase
from supervisor.reload import gate
from supervisor.reload.reloader import Reloader, ReloadRequest, ReloadResult
from supervisor.runtime.paths import Lock, RuntimeDirError, ensure_private_dir, lock_holder
from supervisor.stack.stack import Stack, StackError
from supervisor.systemd import notify as systemd
from supervisor.systemd.notify import Notifier
from supervisor.web import page as web

LIVE = (State.STARTING, State.RUNNING, State.STOPPING)


class Daemon:
    def __init__(
        self,
        config: Config,
        environ: Mapping[str, str],
        notifier: Notifier | None = None,
        ready_fd: int | None = None,
        daemon_log: DaemonLog | None = None,
    ) -> None:
        self.daemon_log = daemon_log
        self.environ = dict(environ)
        self.notifier = notifier or Notifier(environ)
        self.ready_fd = ready_fd
        self.log = logsetup.get("daemon")
        self.queue: asyncio.Queue[Event] = asyncio.Queue()
        self.stack = Stack(config, self.environ, self.enqueue)
        self.stack.inherit(systemd.inherited_fds(environ))  # a restart under systemd
        self.paths = self.stack.paths
        self.phase = Phase.STARTING
        self.exit_code = 0
        self.op_lock = asyncio.Lock()
        self.done = asyncio.Event()
        self.gate = gate.Gate(self.stack)
        self.reloader = Reloader(
            self.stack, self.op_lock, self.notifier, self.gate, restart=self.respawn
        )
        self.probe = ProbeLoop(
            lambda: self.config.health, self._probing_allowed, lambda: self.stack.programs,
            self.op_lock, self.restart_program, lambda: self.stack.uwsgi_driver.stats,
        )
        self.server = Server(self.paths.socket, commands.handlers(self), self.log)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._shutdown: asyncio.Task[Any] | None = None
        self.watcher: triggers.Watcher | None = None  # watchdog: only with [watch] on
        self.queued: ReloadRequest | None = None  # automatic reload waiting for its turn
        self.adopted: set[str] = set()
        self.metrics: Any = None  # metrics.MetricsServer, imported only when configured
        self.web = web.Site(self)  # the status page ([web] listen) and its reload history
        self.started_wall = time.time()

    @property
    def config(self) -> Config:
        """The config in force: a successful reload replaces it."""
        return self.stack.config

    # -- plumbing ------------------------------------------------------------------

    def enqueue(self, event: Event) -> None:
        self.queue.put_nowait(event)

    def spawn_task(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.log.error("task crashed", task=task.get_name(), error=repr(task.exception()))

    def _report_ready(self, line: str) -> None:
        if self.ready_fd is None:
            return
        with contextlib.suppress(OSError):
            os.write(self.ready_fd, (line + "\n").encode())
            os.close(self.ready_fd)
        self.ready_fd = None

    def set_phase(self, new: Phase) -> None:
        check_phase(self.phase, new)
        self.phase = new

    # -- main loop -----------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
            loop.add_signal_handler(signum, self.enqueue, SignalEvent(signum))
        try:
            ensure_private_dir(self.paths.root, self.stack.owner())
        except RuntimeDirError as exc:
            self._report_ready(f"ERROR {exc}")
            self.log.error("cannot start", reason=str(exc))
            return 1
        lock = Lock(self.paths.lock)
        if not lock.acquire():
            message = f"already running (pid {lock_holder(self.paths.lock)}) on {self.paths.root}"
            self._report_ready(f"RUNNING {message}")
            self.log.warning(message)
            return 0
        try:
            await self.server.start()
            self.spawn_task(self.startup(), "startup")
            if self.notifier.watchdog_interval > 0:
                self.spawn_task(self._heartbeat(self.notifier.watchdog_interval), "heartbeat")
            while not self.done.is_set():
                getter = loop.create_task(self.queue.get())
                waiter = loop.create_task(self.done.wait())
                finished, _ = await asyncio.wait(
                    {getter, waiter}, return_when=asyncio.FIRST_COMPLETED
                )
                if getter in finished:
                    waiter.cancel()
                    await self.dispatch(getter.result())
                else:
                    getter.cancel()
        finally:
            await self.server.close()
            await asyncio.gather(*(s.close() for s in (self.metrics, self.web) if s is not None))
            for task in list(self._tasks):
                task.cancel()
            lock.release()
        return self.exit_code

    async def dispatch(self, event: Event) -> None:
        handler = HANDLERS[type(event)]
        try:
            await handler(self, event)
        except Exception:  # a bug in one handler must not orphan the stack
            self.log.exception("event handler crashed", event_type=type(event).__name__)
            return
        if isinstance(event, (Exited, Ready)) and self.phase is Phase.RUNNING:
            self.notifier.status(self.summary())

    async def _heartbeat(self, interval: float) -> None:
        while True:
            self.enqueue(Heartbeat())
            await asyncio.sleep(interval)

    # -- events --------------------------------------------------------------------

    async def handle_signal(self, event: SignalEvent) -> None:
        name = signal.Signals(event.signum).name
        if event.signum in (signal.SIGTERM, signal.SIGINT):
            self.log.info("signal: stopping", signal=name)
            self.begin_shutdown(0)
        elif event.signum == signal.SIGHUP:
            self.log.info("signal: reloading", signal=name)
            self.enqueue(ReloadEvent(reason="SIGHUP", trigger="sighup"))
        elif event.signum == signal.SIGUSR1:
            self.log.info("signal: reopening logs", signal=name)
            await self.reopen_logs()

    async def handle_heartbeat(self, event: Heartbeat) -> None:
        self.notifier.watchdog()  # sent from the loop itself: only while it dispatches

    async def handle_reload(self, event: ReloadEvent) -> None:
        """Automatic reloads (SIGHUP, touch, file changes) coalesce: while one waits
        for its turn, further requests merge into it; any number arriving during a
        reload make exactly one follow-up."""
        if self.phase is not Phase.RUNNING:
            return
        request = ReloadRequest(event.nginx, event.app, reason=event.reason, trigger=event.trigger)
        if self.queued is not None:
            self.queued = self.queued.merged(request)
            self.log.info("reload already queued; merged", reason=event.reason)
            return
        self.queued = request

        def begin() -> ReloadRequest:
            taken, self.queued = self.queued, None
            assert taken is not None
            return taken

        self.spawn_task(self.reloader.reload(request, _log_progress(self.log), begin), "reload")

    async def handle_exited(self, event: Exited) -> None:
        prog = self.stack.program_for(event.program, event.pid)
        if event.pid != prog.pid or prog.state not in LIVE:
            return  # an old process, already dealt with
        detail = prog.record_exit(event.returncode)
        if prog.state is State.STOPPING:
            await prog.transition(State.STOPPED, code=event.returncode)
            return
        facts = prog.exit_facts(time.monotonic())
        await prog.transition(State.EXITED, code=event.returncode, detail=detail)
        # a generation that is not serving: the reload that owns it decides
        if prog in self.stack.others or self.phase is Phase.STARTING:
            await prog.transition(State.FATAL, reason=prog.last_exit)
        elif self.phase is Phase.STOPPING:
            await prog.transition(State.STOPPED)
        else:
            await prog.follow(policy.after_exit(facts, self.config.backoff))

    async def handle_ready(self, event: Ready) -> None:
        prog = self.stack.program_for(event.program, event.pid)
        if event.pid != prog.pid or prog.state is not State.STARTING:
            return
        prog.mark_ready()
        await prog.transition(State.RUNNING)
        if self.phase is Phase.RUNNING:
            self.stack.save_state()

    async def handle_retry(self, event: Retry) -> None:
        # not awaited here: the lock may be held by a reload that needs this loop
        self.spawn_task(self._retry(self.stack.programs[event.program]), "retry")

    async def _retry(self, prog: Program) -> None:
        async with self.op_lock:  # never beside a reload's or a probe's own restart
            if prog.state not in (State.BACKOFF, State.FATAL):
                return
            prog.count_restart()
            await self.respawn(prog)

    async def respawn(self, prog: Program) -> bool:
        """Clean what the last process left in its group, then start anew (only while
        the daemon is running: never after a stop began)."""
        if self.phase is not Phase.RUNNING:
            return False
        leftovers = prog.leftovers_of_last()
        if not prog.driver.holds_sockets():
            await prog.reap_leftovers(leftovers)  # they may hold the port it will bind
        await prog.spawn()  # on held sockets at once: connections wait in the backlog
        await prog.reap_leftovers(leftovers)
        return True

    async def restart_program(self, prog: Program, why: str) -> None:
        """Stop (briefly graceful, then SIGKILL to the group) and start again."""
        self.log.warning("restarting", program=prog.name, why=why)
        prog.count_restart(probe=True)
        await prog.stop(time.monotonic() + min(self.config.fnud.stop_timeout, 5.0))
        if not await self.respawn(prog):
            return
        await prog.wait_state(
            [State.RUNNING, State.FATAL, State.BACKOFF], self.config.fnud.start_timeout
        )

    async def reopen_logs(self) -> dict[str, list[str]]:
        """Reopen fnud's own log and make nginx (USR1) and uWSGI ('l') reopen theirs."""
        return await reopen_all(self.daemon_log, self.stack.programs.values(), self.log)

    # -- start ---------------------------------------------------------------------

    async def startup(self) -> None:
        try:
            async with self.op_lock:
                self.adopted = await startup.start_stack(self.stack, self.gate, self.notifier)
            await self._become_ready()
        except startup.StartupError as exc:
            self.log.error("start failed", reason=str(exc))
            self._report_ready(f"ERROR {exc}")
            self.begin_shutdown(1)
        except Exception as exc:  # a bug: still stop what was started, and say so
            self.log.exception("start crashed")
            self._report_ready(f"ERROR internal error during start: {exc!r}")
            self.begin_shutdown(1)

    async def _become_ready(self) -> None:
        self.set_phase(Phase.RUNNING)
        touch = triggers.touch_watcher(self.stack, self.enqueue)
        if touch is not None:
            self.spawn_task(touch, "touch")
        self.watcher = triggers.file_watcher(self.stack, self.enqueue)
        self.reloader.listeners.append(self._rewatch)
        if self.config.health.interval > 0:
            self.spawn_task(self.probe.run(), "probe")
        await self._start_metrics()
        await self.web.start()
        if not self.stack.ini_digest:
            self.stack.ini_digest = self.stack.current_ini_digest()
        if not self.stack.nginx_digest:
            self.stack.nginx_digest = self.stack.current_nginx_digest()
        self.stack.save_state()
        summary = self.summary()
        self.log.info("stack ready", url=self.config.health.url, summary=summary)
        self.notifier.ready(summary)
        self._report_ready(f"READY {summary}")

    def _rewatch(self, result: ReloadResult) -> None:
        """[watch] follows the app directory by its configured path: after a release
        symlink switch it watches the new release."""
        if self.watcher is None or result.result != "ok":
            return
        try:
            if self.watcher.rules.code_dirs == triggers.code_dirs(self.stack):
                return
        except StackError:
            return
        self.watcher.stop()
        self.watcher = triggers.file_watcher(self.stack, self.enqueue)

    def _probing_allowed(self) -> bool:
        return (
            self.phase is Phase.RUNNING
            and not self.op_lock.locked()  # never during a reload (or a probe restart)
            and all(prog.running for prog in self.stack.programs.values())
        )

    # -- metrics (optional: imported only when configured) ---------------------------

    async def _start_metrics(self) -> None:
        listen, address = self.config.metrics.listen, self.config.metrics.address
        if address is None:
            return
        from supervisor.web.metrics import MetricsServer

        self.metrics = server = MetricsServer(self, lambda: self.stack.uwsgi_driver.stats)
        self.reloader.listeners.append(
            lambda result: server.observe_reload(result.result, result.duration)
        )
        if listen != self.config.web.listen:  # else the status page's server answers it
            try:
                await server.start(address.host, address.port)
            except OSError as exc:
                self.log.error("cannot serve metrics", listen=listen, error=exc.strerror)

    def metric_programs(self) -> dict[str, Program]:
        return self.stack.programs

    def metric_reload_counts(self) -> dict[str, int]:
        return self.reload_counts()

    def metric_probe_failures(self) -> int:
        return self.probe.total_failures

    def metric_generation(self) -> tuple[int, bool]:
        return self.stack.generation, self.reloader.generations.warm is not None

    # -- stop ----------------------------------------------------------------------

    def begin_shutdown(self, code: int) -> asyncio.Task[Any]:
        if self._shutdown is None:
            self.exit_code = code
            self._shutdown = self.spawn_task(self.shutdown(), "shutdown")
        return self._shutdown

    async def shutdown(self) -> None:
        self.set_phase(Phase.STOPPING)
        self.notifier.stopping()
        if self.watcher is not None:
            self.watcher.stop()
        deadline = time.monotonic() + self.config.fnud.stop_timeout
        for task in list(self._tasks):
            if task.get_name() == "startup":
                task.cancel()
        # Let a reload in progress finish first: uWSGI 2.0 never exits on 'q' sent while
        # a chain reload is loading a new worker (measured), so cutting the reload short
        # would cost the whole stop deadline and end in SIGKILL.
        self.reloader.closed = True  # reloads still queued are refused from now on
        self.reloader.generations.end_settle.set()  # a settle keeps what it has, now
        budget = max(0.0, (deadline - time.monotonic()) / 2)
        try:
            await asyncio.wait_for(self.op_lock.acquire(), budget)
        except asyncio.TimeoutError:
            self.log.warning("a reload is still running after half the stop budget; stopping")
            self.reloader.cancel()
        # reverse of start order; then any generation a cut-short reload left behind
        for prog in (self.stack.nginx, self.stack.uwsgi, *self.stack.others):
            await prog.stop(deadline)
        self.stack.clear_state()
        self.log.info("stack stopped")
        self.done.set()

    # -- status ----------------------------------------------------------------------

    def reload_counts(self) -> dict[str, int]:
        return {k: self.reloader.counts[k] for k in ("ok", "refused", "failed", "rolled_back")}

    async def status(self) -> dict[str, Any]:
        last = self.reloader.last
        return {
            "daemon": {
                "pid": os.getpid(),
                "phase": self.phase.value,
                "config": str(self.config.path),
                "started": self.started_wall,
            },
            "programs": await status.programs(self.stack),
            "generation": status.generation(self.stack, self.reloader.generations.warm),
            "last_reload": last.as_dict() if last else None,
            "reloads": self.reload_counts(),
            "reloading": self.op_lock.locked(),
            "watch": self._watch_status(),
            "probe": {"failures": self.probe.total_failures},
        }

    def _watch_status(self) -> dict[str, Any]:
        if self.watcher is None:
            return {"enabled": False}
        return {
            "enabled": True,
            "mode": "polling" if self.watcher.polling else "inotify",
            # a burst still in its debounce window, or a reload waiting or running
            "pending": self.watcher.debouncer.pending
            or self.queued is not None
            or self.op_lock.locked(),
        }

    def summary(self) -> str:
        return status.summary(self.stack, self.adopted, self.reloader.last)


Handler = Callable[[Daemon, Any], Awaitable[None]]

HANDLERS: dict[type, Handler] = {
    SignalEvent: Daemon.handle_signal,
    Heartbeat: Daemon.handle_heartbeat,
    ReloadEvent: Daemon.handle_reload,
    Exited: Daemon.handle_exited,
    Ready: Daemon.handle_ready,
    Retry: Daemon.handle_retry,
}
_missing = set(ALL) ^ set(HANDLERS)
if _missing:  # an event without a handler (or a handler for no event) fails at import
    raise ImportError(f"daemon.HANDLERS does not match events.ALL: {sorted(map(str, _missing))}")


def _log_progress(log: Any) -> Emit:
    async def emit(text: str) -> None:
        log.info(text)

    return emit
