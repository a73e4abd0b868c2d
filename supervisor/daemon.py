"""The daemon: one asyncio loop, one queue of events, one state machine per program.

Signal handlers and watcher callbacks only put events on the queue; ``run`` takes
them off one at a time and dispatches to ``handle_<event>``. Long operations (start,
reload, stop) run as tasks serialised by one lock, so a reload never interleaves
with another reload or with a stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor import checks, health, logsetup, nginx, probe, survivors, uwsgi
from supervisor.childenv import child_env
from supervisor.config import Config
from supervisor.control import CommandError, Emit, Server
from supervisor.logfile import DaemonLog
from supervisor.metrics import MetricsServer, rss
from supervisor.preflight import PreflightError, preflight
from supervisor.program import Exited, Program, Ready, Retry
from supervisor.reload import Reloader, ReloadRequest, ReloadResult, first_error
from supervisor.runtime import Lock, RuntimeDirError, ensure_private_dir, lock_holder
from supervisor.stack import Stack, StackError
from supervisor.states import State
from supervisor.systemd import Notifier
from supervisor.touch import TouchWatcher
from supervisor.watch import Change, Rules, Watcher, resolve_all


@dataclass(frozen=True)
class SignalEvent:
    signum: int


@dataclass(frozen=True)
class Heartbeat:
    """Put on the queue periodically; handling it proves the loop is not wedged."""


@dataclass(frozen=True)
class ReloadEvent:
    reason: str
    nginx: bool = True
    app: bool = True


class StartupError(Exception):
    pass


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
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.stack = Stack(config, self.environ, self.enqueue)
        self.paths = self.stack.paths
        self.phase = "starting"  # starting -> running -> stopping
        self.exit_code = 0
        self.op_lock = asyncio.Lock()
        self.done = asyncio.Event()
        self.reloader = Reloader(
            self.stack, self.op_lock, self.notifier, restart=self.respawn,
            lint=functools.partial(checks.errors_for, check_ports=False),
        )
        self.server = Server(self.paths.socket, self._handlers(), self.log)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._startup: asyncio.Task[Any] | None = None
        self._shutdown: asyncio.Task[Any] | None = None
        self.watcher: Watcher | None = None
        self._queued: ReloadRequest | None = None
        self.adopted: set[str] = set()
        self.probe_failures = 0
        self.metrics: MetricsServer | None = None  # automatic reload waiting for its turn
        self.started_wall = time.time()

    @property
    def config(self) -> Config:
        """The config in force: a successful reload replaces it."""
        return self.stack.config

    # -- plumbing ------------------------------------------------------------------

    def enqueue(self, event: Any) -> None:
        self.queue.put_nowait(event)

    def spawn_task(self, coro: Any, name: str) -> asyncio.Task[Any]:
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
            holder = lock_holder(self.paths.lock)
            message = f"already running (pid {holder}) on {self.paths.root}"
            self._report_ready(f"RUNNING {message}")
            self.log.warning(message)
            return 0
        try:
            await self.server.start()
            self._startup = self.spawn_task(self.startup(), "startup")
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
            if self.metrics is not None:
                await self.metrics.close()
            for task in list(self._tasks):
                task.cancel()
            lock.release()
        return self.exit_code

    async def dispatch(self, event: Any) -> None:
        handler = getattr(self, "handle_" + type(event).__name__.lower(), None)
        if handler is None:
            self.log.warning("unknown event", event_type=type(event).__name__)
            return
        try:
            await handler(event)
        except Exception:  # a bug in one handler must not orphan the stack
            self.log.exception("event handler crashed", event_type=type(event).__name__)
            return
        if isinstance(event, (Exited, Ready)) and self.phase == "running":
            self.notifier.status(self.summary())

    async def _heartbeat(self, interval: float) -> None:
        while True:
            self.enqueue(Heartbeat())
            await asyncio.sleep(interval)

    # -- events --------------------------------------------------------------------

    async def handle_signalevent(self, event: SignalEvent) -> None:
        name = signal.Signals(event.signum).name
        if event.signum in (signal.SIGTERM, signal.SIGINT):
            self.log.info("signal: stopping", signal=name)
            self.begin_shutdown(0)
        elif event.signum == signal.SIGHUP:
            self.log.info("signal: reloading", signal=name)
            self.enqueue(ReloadEvent(reason="SIGHUP"))
        elif event.signum == signal.SIGUSR1:
            self.log.info("signal: reopening logs", signal=name)
            await self.reopen_logs()

    async def reopen_logs(self) -> list[str]:
        """Reopen fnud's own log and make nginx (USR1) and uWSGI ('l') reopen theirs."""
        done = []
        if self.daemon_log is not None:
            self.daemon_log.reopen()
            done.append(f"fnud -> {self.daemon_log.path}")
        for prog in self.stack.programs.values():
            if not prog.running:
                continue
            try:
                await prog.driver.reopen_logs(prog.pid)
                done.append(f"{prog.name} -> {prog.log_path}")
            except OSError as exc:
                self.log.warning("log reopen failed", program=prog.name, error=str(exc))
        self.log.info("logs reopened", files=done)
        return done

    async def handle_heartbeat(self, event: Heartbeat) -> None:
        self.notifier.watchdog()  # sent from the loop itself: only while it dispatches

    async def handle_reloadevent(self, event: ReloadEvent) -> None:
        """Automatic reloads (SIGHUP, touch, file changes) coalesce: while one waits
        for its turn, further requests merge into it; any number arriving during a
        reload make exactly one follow-up."""
        if self.phase != "running":
            return
        if self._queued is not None:
            self._queued = ReloadRequest(
                nginx=self._queued.nginx or event.nginx,
                app=self._queued.app or event.app,
                reason=self._queued.reason + "; " + event.reason,
            )
            self.log.info("reload already queued; merged", reason=event.reason)
            return
        self._queued = ReloadRequest(nginx=event.nginx, app=event.app, reason=event.reason)

        def begin() -> ReloadRequest:
            request, self._queued = self._queued, None
            assert request is not None
            return request

        self.spawn_task(
            self.reloader.reload(self._queued, _log_progress(self.log), on_begin=begin),
            "reload",
        )

    async def handle_exited(self, event: Exited) -> None:
        prog = self.stack.programs[event.program]
        if event.pid != prog.pid or prog.state not in (
            State.STARTING, State.RUNNING, State.STOPPING
        ):
            return  # an old process, already dealt with
        reason = f"exited with code {event.returncode}"
        detail = prog.failure_reason()
        prog.last_exit = f"{reason}: {detail}" if detail else reason
        if prog.state is State.STOPPING:
            await prog.transition(State.STOPPED, code=event.returncode)
            return
        uptime = time.monotonic() - prog.started_at
        was_running = prog.state is State.RUNNING
        await prog.transition(State.EXITED, code=event.returncode, detail=detail)
        if self.phase == "starting":
            await prog.transition(State.FATAL, reason=prog.last_exit)
            return
        if self.phase == "stopping":
            await prog.transition(State.STOPPED)
            return
        backoff = self.config.backoff
        if was_running and uptime >= backoff.quick_seconds:
            prog.quick_failures = 0
        prog.quick_failures += 1
        if prog.quick_failures >= backoff.quick_failures:
            await prog.transition(
                State.FATAL, reason=prog.last_exit, failures=prog.quick_failures
            )
            if backoff.cooldown > 0:
                prog.schedule(backoff.cooldown)
            return
        if was_running and uptime >= backoff.quick_seconds:
            delay = 0.0  # a first crash after a healthy run: back at once, like supervisord
        else:
            delay = min(backoff.initial * 2 ** (prog.quick_failures - 1), backoff.max)
        await prog.transition(State.BACKOFF, retry_in=round(delay, 2))
        prog.schedule(delay)

    async def handle_ready(self, event: Ready) -> None:
        prog = self.stack.programs[event.program]
        if event.pid != prog.pid or prog.state is not State.STARTING:
            return
        prog.ready_at = time.monotonic()
        prog.why = ""
        await prog.transition(State.RUNNING)
        if self.phase == "running":
            self.stack.save_state()

    async def handle_retry(self, event: Retry) -> None:
        # not awaited here: the lock may be held by a reload that needs this loop
        self.spawn_task(self._retry(self.stack.programs[event.program]), "retry")

    async def _retry(self, prog: Program) -> None:
        async with self.op_lock:  # never beside a reload's or a probe's own restart
            if prog.state not in (State.BACKOFF, State.FATAL):
                return
            prog.restarts += 1
            await self.respawn(prog)

    async def respawn(self, prog: Program) -> bool:
        """Clean what the last process left in its group, then start anew (only while
        the daemon is running: never after a stop began)."""
        if self.phase != "running":
            return False
        await prog.reap_leftovers()
        await prog.spawn()
        return True

    # -- start ---------------------------------------------------------------------

    async def startup(self) -> None:
        try:
            async with self.op_lock:
                await self._start_stack()
            await self._become_ready()
        except StartupError as exc:
            self.log.error("start failed", reason=str(exc))
            self._report_ready(f"ERROR {exc}")
            self.begin_shutdown(1)
        except Exception as exc:  # a bug: still stop what was started, and say so
            self.log.exception("start crashed")
            self._report_ready(f"ERROR internal error during start: {exc!r}")
            self.begin_shutdown(1)

    async def _become_ready(self) -> None:
        self.phase = "running"
        self._start_touch_watcher()
        self._start_file_watcher()
        if self.config.health.interval > 0:
            self.spawn_task(self._probe_loop(), "probe")
        await self._start_metrics()
        if not self.stack.ini_digest:
            self.stack.ini_digest = self.stack.current_ini_digest()
        if not self.stack.nginx_digest:
            self.stack.nginx_digest = self.stack.current_nginx_digest()
        self.stack.save_state()
        summary = self.summary()
        self.log.info("stack ready", url=self.config.health.url, summary=summary)
        self.notifier.ready(summary)
        self._report_ready(f"READY {summary}")

    async def _start_stack(self) -> None:
        stack = self.stack
        # workers a dead master left (nginx's hold the port): not adoptable, so they go
        await asyncio.to_thread(survivors.reap_orphans, self.config)
        try:
            stack.check_binaries()
            spec = stack.app()
            conf = stack.nginx_conf()
        except StackError as exc:
            raise StartupError(str(exc)) from None
        # fnud check's errors, ports included (nginx -t ignores EADDRINUSE); the ports of
        # adopted programs are ours
        refusal = first_error(checks.errors_for(self.config, check_ports=True))
        refusal = refusal or stack.root_refusal()
        if refusal:
            raise StartupError(refusal)
        user = self.config.fnud.user
        nginx.prepare_prefix(self.paths.nginx_prefix, nginx.worker_uid(conf, user))
        ok, message = await nginx.config_test(
            stack.nginx_binary(), self.paths.nginx_prefix, self.config.nginx.conf, conf,
            child_env(self.environ), stack.nginx_driver.user, stack.nginx_driver.group,
        )
        if not ok:
            raise StartupError(f"nginx -t failed: {message}")
        # adopt only once the checks passed (their port rule knows survivors are ours)
        self.adopted = await self._adopt_survivors()
        fresh = [prog for prog in (stack.uwsgi, stack.nginx) if prog.name not in self.adopted]
        if stack.uwsgi in fresh:
            try:
                await preflight(spec, self.environ, owner=stack.owner())
            except PreflightError as exc:
                raise StartupError(f"app does not load: {exc}") from None
        for prog in fresh:  # uWSGI first: nginx only once uWSGI accepts
            await prog.spawn()
            await self._wait_running(prog)
        await self._wait_healthy()

    async def _adopt_survivors(self) -> set[str]:
        """Programs a killed daemon left running: watch them instead of starting anew."""
        state = survivors.load_state(self.paths)
        adopted = set()
        for name, pid in survivors.find(self.config).items():
            await self.stack.programs[name].adopt(
                pid, float(state[name].get("started") or time.time())
            )
            adopted.add(name)
        if "uwsgi" in adopted:  # what the running processes were started with
            self.stack.ini_digest = str(state.get("ini_digest", ""))
        if "nginx" in adopted:
            self.stack.nginx_digest = str(state.get("nginx_digest", ""))
        if adopted:
            self.log.info(
                "adopted programs left running by a previous daemon",
                programs={n: self.stack.programs[n].pid for n in sorted(adopted)},
            )
        return adopted

    def _start_file_watcher(self) -> None:
        watch = self.config.watch
        if not watch.enabled:
            return
        try:
            code_dirs = watch.paths or (Path(self.stack.app().chdir),)
            nginx_files = [Path(f) for f in self.stack.nginx_conf().files]
        except StackError as exc:
            self.log.error("cannot watch files", reason=str(exc))
            return
        rules = Rules(
            code_dirs=tuple(p.resolve() for p in code_dirs),
            include=watch.include,
            exclude=watch.exclude,
            nginx_files=resolve_all(nginx_files),
            ini_files=resolve_all([self.config.uwsgi.ini]),
            config_files=resolve_all([self.config.path]),
        )

        def changed(change: Change) -> None:
            self.enqueue(ReloadEvent(reason=change.describe(), nginx=change.nginx, app=change.app))

        self.watcher = Watcher(rules, watch.debounce_ms / 1000, changed)
        self.watcher.start(asyncio.get_running_loop())

    def _start_touch_watcher(self) -> None:
        try:
            files = self.stack.touch_files()
        except StackError:
            return
        if not files:
            return
        self.log.info("watching touch files (gated reload)", files=[str(f) for f in files])

        def touched(path: Path) -> None:
            self.enqueue(ReloadEvent(reason=f"touched {path}"))

        self.spawn_task(TouchWatcher(files, touched).run(), "touch")

    async def _wait_running(self, prog: Program) -> None:
        settled = {State.RUNNING, State.FATAL, State.STOPPED, State.STOPPING}
        await prog.wait_state(settled, self.config.fnud.start_timeout + 5)
        if prog.state is State.RUNNING:
            return
        reason = prog.last_exit or prog.why or "did not start"
        raise StartupError(f"{prog.name} failed to start: {reason}")

    async def _wait_healthy(self) -> None:
        url = self.config.health.url
        deadline = time.monotonic() + self.config.fnud.start_timeout
        last = ""
        while time.monotonic() < deadline:
            for prog in self.stack.programs.values():
                if prog.state is not State.RUNNING:
                    raise StartupError(f"{prog.name} failed to start: {prog.last_exit}")
            try:
                await health.check(url, self.config.health.timeout)
                return
            except health.HealthError as exc:
                last = str(exc)
            await asyncio.sleep(0.1)
        raise StartupError(f"health check never passed: {last}")

    # -- metrics -----------------------------------------------------------------------

    async def _start_metrics(self) -> None:
        listen = self.config.metrics.listen
        if not listen:
            return
        host, _, port = listen.rpartition(":")
        self.metrics = MetricsServer(self, self.paths.stats)
        self.reloader.listeners.append(
            lambda result: self.metrics.observe_reload(result.result, result.duration)
            if self.metrics else None
        )
        try:
            await self.metrics.start(host.strip("[]"), int(port))
        except OSError as exc:
            self.log.error("cannot serve metrics", listen=listen, error=exc.strerror)
            self.metrics = None

    def metric_programs(self) -> dict[str, Program]:
        return self.stack.programs

    def metric_reload_counts(self) -> dict[str, int]:
        return {k: self.reloader.counts[k] for k in ("ok", "refused", "failed")}

    def metric_probe_failures(self) -> int:
        return self.probe_failures

    # -- health probe ----------------------------------------------------------------

    def _probing_allowed(self) -> bool:
        return (
            self.phase == "running"
            and not self.op_lock.locked()  # never during a reload (or a probe restart)
            and all(prog.running for prog in self.stack.programs.values())
        )

    async def _probe_loop(self) -> None:
        failures = 0
        while True:
            cfg = self.config.health  # a reload may have changed it
            await asyncio.sleep(cfg.interval or 1.0)
            if not cfg.interval:
                continue
            if not self._probing_allowed():
                failures = 0
                continue
            result = await probe.probe(cfg.url, cfg.timeout, self.paths.stats)
            if not self._probing_allowed():
                failures = 0  # a reload began while we probed: its effects don't count
                continue
            if result.ok:
                failures = 0
                continue
            failures += 1
            self.probe_failures += 1
            self.log.warning(
                "health probe failed", reason=result.reason, culprit=result.culprit,
                failures=failures, limit=cfg.failures,
            )
            if failures >= cfg.failures and result.culprit is not None:
                failures = 0
                culprit = self.stack.programs[result.culprit]
                async with self.op_lock:
                    await self.restart_program(culprit, f"health probe: {result.reason}")

    async def restart_program(self, prog: Program, why: str) -> None:
        """Stop (briefly graceful, then SIGKILL to the group) and start again."""
        self.log.warning("restarting", program=prog.name, why=why)
        prog.probe_restarts += 1
        prog.restarts += 1
        deadline = time.monotonic() + min(self.config.fnud.stop_timeout, 5.0)
        await prog.stop(deadline)
        if not await self.respawn(prog):
            return
        await prog.wait_state(
            [State.RUNNING, State.FATAL, State.BACKOFF], self.config.fnud.start_timeout
        )

    # -- stop ----------------------------------------------------------------------

    def begin_shutdown(self, code: int) -> asyncio.Task[Any]:
        if self._shutdown is None:
            self.exit_code = code
            self._shutdown = self.spawn_task(self.shutdown(), "shutdown")
        return self._shutdown

    async def shutdown(self) -> None:
        self.phase = "stopping"
        self.notifier.stopping()
        if self.watcher is not None:
            self.watcher.stop()
        deadline = time.monotonic() + self.config.fnud.stop_timeout
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current and task.get_name() == "startup":
                task.cancel()
        # Let a reload in progress finish first: uWSGI 2.0 never exits on 'q' sent while
        # a chain reload is loading a new worker (measured), so cutting the reload short
        # would cost the whole stop deadline and end in SIGKILL.
        self.reloader.closed = True  # reloads still queued are refused from now on
        budget = max(0.0, (deadline - time.monotonic()) / 2)
        try:
            await asyncio.wait_for(self.op_lock.acquire(), budget)
        except asyncio.TimeoutError:
            self.log.warning("a reload is still running after half the stop budget; stopping")
            self.reloader.cancel()
        for prog in (self.stack.nginx, self.stack.uwsgi):  # reverse of start order
            await prog.stop(deadline)
        self.stack.clear_state()
        self.log.info("stack stopped")
        self.done.set()

    # -- control commands ------------------------------------------------------------

    def _handlers(self) -> dict[str, Any]:
        return {
            "ping": self.cmd_ping,
            "status": self.cmd_status,
            "stop": self.cmd_stop,
            "reload": self.cmd_reload,
            "reopen-logs": self.cmd_reopen_logs,
        }

    async def cmd_ping(self, args: dict[str, Any], emit: Emit) -> Any:
        return {"pid": os.getpid(), "phase": self.phase}

    async def cmd_stop(self, args: dict[str, Any], emit: Emit) -> Any:
        await emit("stopping nginx, then uWSGI")
        await asyncio.shield(self.begin_shutdown(0))
        return {"stopped": True}

    async def cmd_reload(self, args: dict[str, Any], emit: Emit) -> Any:
        if self.phase != "running":
            raise CommandError(f"cannot reload while {self.phase}")
        request = ReloadRequest(
            nginx=bool(args.get("nginx", True)),
            app=bool(args.get("app", True)),
            force_nginx=bool(args.get("force_nginx", False)),
            reason="fnud reload",
        )
        result: ReloadResult = await self.reloader.reload(request, emit)
        if result.result != "ok":
            raise CommandError(f"{result.result}: {result.message}")
        return result.as_dict()

    async def cmd_reopen_logs(self, args: dict[str, Any], emit: Emit) -> Any:
        return {"reopened": await self.reopen_logs()}

    async def cmd_status(self, args: dict[str, Any], emit: Emit) -> Any:
        return await self.status()

    async def status(self) -> dict[str, Any]:
        stats: uwsgi.Stats | None = None
        uw = self.stack.uwsgi
        if uw.state in (State.RUNNING, State.STARTING):
            with contextlib.suppress(OSError, ValueError, asyncio.TimeoutError):
                stats = await uwsgi.read_stats(self.paths.stats, timeout=1.0)
        programs: dict[str, Any] = {}
        for name, prog in self.stack.programs.items():
            entry = program_status(prog)
            if name == "uwsgi":
                workers = [w.as_dict() for w in stats.live_workers] if stats else []
                if stats:
                    entry["listen_queue"] = stats.listen_queue
            else:
                pids = nginx.worker_pids(prog.pid) if prog.state is State.RUNNING else set()
                workers = [{"pid": pid} for pid in sorted(pids)]
            for worker in workers:
                worker["rss"] = rss(worker["pid"])
            entry["workers"] = workers
            programs[name] = entry
        return {
            "daemon": {
                "pid": os.getpid(),
                "phase": self.phase,
                "config": str(self.config.path),
                "started": self.started_wall,
            },
            "programs": programs,
            "last_reload": self.reloader.last.as_dict() if self.reloader.last else None,
            "reloads": {k: self.reloader.counts[k] for k in ("ok", "refused", "failed")},
            "reloading": self.op_lock.locked(),
            "watch": self._watch_status(),
            "probe": {"failures": self.probe_failures},
        }

    def _watch_status(self) -> dict[str, Any]:
        if self.watcher is None:
            return {"enabled": False}
        return {
            "enabled": True,
            "mode": "polling" if self.watcher.polling else "inotify",
            # a burst still in its debounce window, or a reload waiting or running
            "pending": self.watcher.debouncer.pending
            or self._queued is not None
            or self.op_lock.locked(),
        }

    def summary(self) -> str:
        """One line for `fnud start`, systemd's STATUS= and the log: programs, workers,
        last reload."""
        parts = []
        for name, prog in self.stack.programs.items():
            text = f"{name} {prog.state.value.lower()}"
            if name in self.adopted:
                text += " (adopted)"
            if prog.running:
                text += f" ({len(prog.children())} workers)"
            parts.append(text)
        last = self.reloader.last
        if last is not None:
            parts.append(f"last reload {last.result}")
        return ", ".join(parts)


def program_status(prog: Program) -> dict[str, Any]:
    alive = prog.state in (State.STARTING, State.RUNNING, State.STOPPING)
    return {
        "state": prog.state.value,
        "pid": prog.pid if prog.state is not State.STOPPED else 0,
        "rss": rss(prog.pid) if alive else 0,
        "uptime": round(prog.uptime(), 1),
        "restarts": prog.restarts,
        "probe_restarts": prog.probe_restarts,
        "why": prog.why if prog.state is State.STARTING else "",
        "last_exit": prog.last_exit,
    }


def _log_progress(log: Any) -> Emit:
    async def emit(text: str) -> None:
        log.info(text)

    return emit
