"""The daemon: one asyncio loop, one queue of typed events, one state machine per program.

Signal handlers, watchers and timers only put events on the queue; ``run`` takes them
off one at a time and calls the handler that ``HANDLERS`` names for the event's type.
What fnud can be asked to do goes through one command registry (commands.py), from
every door; operations take turns (operations.py). Decisions live elsewhere (policy/:
what an exit means; reload/gate.py: whether a change may go live).
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
from supervisor.control.server import Server
from supervisor.daemon import commands, status
from supervisor.daemon.events import ALL, Event, Heartbeat, Invoke, SignalEvent
from supervisor.daemon.operations import Op, Operations
from supervisor.daemon.phase import Phase, check_phase
from supervisor.daemon.reloads import Reloads
from supervisor.daemon.restarts import Restarts
from supervisor.daemon.services import Services
from supervisor.daemon.startup import StartupError, start_stack
from supervisor.logs import logsetup
from supervisor.logs.logfile import DaemonLog
from supervisor.logs.sink import Sink
from supervisor.process.events import Exited, Ready, Retry
from supervisor.process.program import Program
from supervisor.process.reopen import reopen_all
from supervisor.process.states import State
from supervisor.reload.gate import Gate
from supervisor.reload.generations import Generations
from supervisor.reload.reloader import Reloader
from supervisor.runtime.dirs import RuntimeDirError, ensure_private_dir
from supervisor.runtime.lock import Lock, lock_holder
from supervisor.stack.plan import Plan, StackError
from supervisor.stack.stack import Stack
from supervisor.systemd.notify import Notifier, inherited_fds

LIVE = (State.STARTING, State.RUNNING, State.STOPPING)
SIGNALS = {  # what each signal asks for, through the registry like every other door
    signal.SIGTERM: ("stop", {}),
    signal.SIGINT: ("stop", {}),
    signal.SIGHUP: ("reload", {"reason": "SIGHUP", "trigger": "sighup"}),
    signal.SIGUSR1: ("reopen-logs", {}),
}


class Daemon:
    def __init__(
        self,
        config: Config,
        environ: Mapping[str, str],
        notifier: Notifier | None = None,
        ready_fd: int | None = None,
        daemon_log: DaemonLog | None = None,
        sink: Sink | None = None,
    ) -> None:
        self.daemon_log = daemon_log
        self.sink = sink
        self.notifier = notifier or Notifier(environ)
        self.ready_fd = ready_fd
        self.log = logsetup.get("daemon")
        self.queue: asyncio.Queue[Event] = asyncio.Queue()
        self.stack = Stack(Plan(config, dict(environ)), self.enqueue)
        self.stack.inherit(inherited_fds(environ))  # a restart under systemd
        self.paths = self.stack.paths
        self.phase = Phase.STARTING
        self.exit_code = 0
        self.ops = Operations()
        self.done = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._shutdown: asyncio.Task[Any] | None = None
        self.gate = Gate(lambda: self.stack.plan, warm=True)
        self.restarts = Restarts(self.stack, self.ops, lambda: self.phase)
        self.generations = Generations(self.stack, on_settle=self.ops.settling)
        self.reloader = Reloader(
            self.stack, self.gate, self.notifier, self.restarts.respawn, self.generations
        )
        self.reloads = Reloads(
            self.ops, self.reloader.run, self.reloader.ended, self.generations.interrupts,
            self.spawn_task,
        )
        self.registry = commands.Registry(self._commands(), self.spawn_task, self.log)
        self.server = Server(self.paths.socket, self.registry.call, self.log)
        self.services = Services(
            self.stack, self.ops, lambda: self.phase, self.restarts, self.reloader,
            self.generations, self.registry, self.enqueue, self.spawn_task,
            lambda: status.problems(self.config.fnud.log_dir, self.sink),
        )
        self.adopted: set[str] = set()
        self.started_wall = time.time()

    def _commands(self) -> list[commands.Command]:
        display = self.stack.app.driver.display
        return [
            commands.Ping(lambda: {"pid": os.getpid(), "phase": self.phase.value}),
            commands.Status(self.status),
            commands.Stop(lambda: self.begin_shutdown(0), f"stopping nginx, then {display}"),
            commands.ReopenLogs(self.reopen_logs),
            commands.Reload(self.reloads, lambda: self.phase),
            commands.Rollback(self.reloads, lambda: self.phase, self._rollback_unavailable),
        ]

    def _rollback_unavailable(self) -> str:
        if self.stack.plan.generation_mode:
            return ""
        return f"it needs {self.config.generation_key}"

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

    def report_ready(self, line: str) -> None:
        """Tell `fnud start` (waiting on the ready pipe) how the start went."""
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
        for signum in SIGNALS:
            loop.add_signal_handler(signum, self.enqueue, SignalEvent(signum))
        try:
            ensure_private_dir(self.paths.root, self.stack.plan.owner, self.stack.app.name)
        except (RuntimeDirError, StackError) as exc:  # StackError: an unknown [fnud] user
            self.report_ready(f"ERROR {exc}")
            self.log.error("cannot start", reason=str(exc))
            return 1
        lock = Lock(self.paths.lock)
        if not lock.acquire():
            message = f"already running (pid {lock_holder(self.paths.lock)}) on {self.paths.root}"
            self.report_ready(f"RUNNING {message}")
            self.log.warning(message)
            return 0
        try:
            await self.server.start()
            self.spawn_task(self.startup(), "startup")
            if self.notifier.watchdog_interval > 0:
                self.spawn_task(self._heartbeat(self.notifier.watchdog_interval), "heartbeat")
            await self._serve(loop)
        finally:
            await self.server.close()
            await self.services.close()
            await self.gate.close()
            for task in list(self._tasks):
                task.cancel()
            lock.release()
        return self.exit_code

    async def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
        while not self.done.is_set():
            getter = loop.create_task(self.queue.get())
            waiter = loop.create_task(self.done.wait())
            finished, _ = await asyncio.wait({getter, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if getter in finished:
                waiter.cancel()
                await self.dispatch(getter.result())
            else:
                getter.cancel()

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
        name, args = SIGNALS[signal.Signals(event.signum)]
        self.log.info(f"signal: {name}", signal=signal.Signals(event.signum).name)
        self.registry.start(name, args)

    async def handle_invoke(self, event: Invoke) -> None:
        self.registry.start(event.command, event.args)

    async def handle_heartbeat(self, event: Heartbeat) -> None:
        self.notifier.watchdog()  # sent from the loop itself: only while it dispatches

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
            await prog.follow(self.restarts.after_exit(facts))

    async def handle_ready(self, event: Ready) -> None:
        prog = self.stack.program_for(event.program, event.pid)
        if event.pid != prog.pid or prog.state is not State.STARTING:
            return
        prog.mark_ready()
        await prog.transition(State.RUNNING)
        if self.phase is Phase.RUNNING:
            self.stack.save_state()

    async def handle_retry(self, event: Retry) -> None:
        # not awaited here: the turn may be held by a reload that needs this loop
        self.spawn_task(self.restarts.retry(self.stack.programs[event.program]), "retry")

    async def reopen_logs(self) -> dict[str, list[str]]:
        """Reopen fnud's own log and make every program reopen its own."""
        return await reopen_all(self.daemon_log, self.stack.programs.values(), self.log)

    # -- start ---------------------------------------------------------------------

    async def startup(self) -> None:
        try:
            async with self.ops.turn(Op.STARTING):
                self.adopted = await start_stack(self.stack, self.gate, self.notifier)
            await self.become_ready()
        except StartupError as exc:
            self.log.error("start failed", reason=str(exc))
            self.report_ready(f"ERROR {exc}")
            self.begin_shutdown(1)
        except Exception as exc:  # a bug: still stop what was started, and say so
            self.log.exception("start crashed")
            self.report_ready(f"ERROR internal error during start: {exc!r}")
            self.begin_shutdown(1)

    async def become_ready(self) -> None:
        self.set_phase(Phase.RUNNING)
        await self.services.start(self.status)
        self.spawn_task(self.gate.warm_up(), "warm-up")
        stack = self.stack
        stack.ini_digest = stack.ini_digest or stack.plan.ini_digest()
        stack.nginx_digest = stack.nginx_digest or stack.plan.nginx_digest()
        stack.save_state()
        summary = self.summary()
        self.log.info("stack ready", url=self.config.health.url, summary=summary)
        self.notifier.ready(summary)
        self.report_ready(f"READY {summary}")

    # -- stop ----------------------------------------------------------------------

    def begin_shutdown(self, code: int) -> asyncio.Task[Any]:
        if self._shutdown is None:
            self.exit_code = code
            self._shutdown = self.spawn_task(self.shutdown(), "shutdown")
        return self._shutdown

    async def shutdown(self) -> None:
        self.set_phase(Phase.STOPPING)
        self.notifier.stopping()
        self.services.stop_watching()
        deadline = time.monotonic() + self.config.fnud.stop_timeout
        for task in list(self._tasks):
            if task.get_name() == "startup":
                task.cancel()
        # Let a reload in progress finish first: uWSGI 2.0 never exits on 'q' sent while
        # a chain reload is loading a new worker (measured), so cutting the reload short
        # would cost the whole stop deadline and end in SIGKILL.
        self.reloads.close()  # a reload still waiting is refused from now on
        self.generations.interrupts.end.set()  # a settle keeps what it has, now
        if not await self.ops.stop(max(0.0, (deadline - time.monotonic()) / 2)):
            self.log.warning("a reload is still running after half the stop budget; stopping")
        # reverse of start order; then any generation a cut-short reload left behind
        stopping: list[Program[Any]] = [self.stack.nginx, self.stack.app, *self.stack.others]
        for prog in stopping:
            await prog.stop(deadline)
        self.stack.clear_state()
        self.log.info("stack stopped")
        self.done.set()

    # -- status ----------------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        last = self.reloader.last
        return {
            "daemon": {
                "pid": os.getpid(),
                "phase": self.phase.value,
                "config": str(self.config.path),
                "started": self.started_wall,
            },
            "app": status.app_server(self.stack),
            "programs": await status.programs(self.stack),
            "generation": status.generation(
                self.stack, self.generations.warm, self.generations.cold
            ),
            "last_reload": last.as_dict() if last else None,
            "reloads": self.services.reload_counts(),
            "operation": self.ops.state.value,
            "reloading": not self.ops.idle,
            "watch": self.services.watch_status(self.reloads.pending or not self.ops.idle),
            "probe": {"failures": self.services.probe.total_failures},
            "problems": status.problems(self.config.fnud.log_dir, self.sink),
            "preflight": self.gate.preflight_status(),
        }

    def summary(self) -> str:
        return status.summary(self.stack, self.adopted, self.reloader.last)


Handler = Callable[[Daemon, Any], Awaitable[None]]

HANDLERS: dict[type, Handler] = {
    SignalEvent: Daemon.handle_signal,
    Invoke: Daemon.handle_invoke,
    Heartbeat: Daemon.handle_heartbeat,
    Exited: Daemon.handle_exited,
    Ready: Daemon.handle_ready,
    Retry: Daemon.handle_retry,
}
_missing = set(ALL) ^ set(HANDLERS)
if _missing:  # an event without a handler (or a handler for no event) fails at import
    raise ImportError(f"loop.HANDLERS does not match events.ALL: {sorted(map(str, _missing))}")
