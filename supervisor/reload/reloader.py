"""The gated reload: nothing is signalled until everything that can be checked passed.

Order: re-read fnud.toml, lint, ``nginx -t``, import the app in a fresh interpreter;
only then reload nginx (when its config changed, confirmed by new worker PIDs) and
chain-reload uWSGI (tracked worker by worker from the stats socket). A refused reload
leaves every process as it was.
"""

from __future__ import annotations

import asyncio
import collections
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from supervisor.control.server import Emit
from supervisor.logs import logsetup
from supervisor.nginx import conf as nginx
from supervisor.process.program import Program
from supervisor.process.states import State
from supervisor.reload import gate
from supervisor.reload.generations import Generations, RolledBack, SwitchError
from supervisor.stack.stack import Stack
from supervisor.systemd.notify import Notifier
from supervisor.uwsgi import driver as uwsgi

Restart = Callable[[Program], Awaitable[bool]]


@dataclass(frozen=True)
class ReloadRequest:
    nginx: bool = True
    app: bool = True
    force_nginx: bool = False
    reason: str = ""
    no_wait: bool = False  # the CLI returns at the switch; the settle goes on
    rollback: bool = False  # back to the previous generation instead (fnud rollback)
    # set once the new generation serves (fnud reload --no-wait returns then)
    switched: asyncio.Event | None = field(default=None, compare=False)
    trigger: str = ""  # cli, systemd, sighup, save, touch, web (merged: "save+touch")

    def triggers(self) -> list[str]:
        return self.trigger.split("+")

    def merged(self, other: ReloadRequest) -> ReloadRequest:
        """One request doing what both ask for."""
        return ReloadRequest(
            nginx=self.nginx or other.nginx,
            app=self.app or other.app,
            force_nginx=self.force_nginx or other.force_nginx,
            reason=f"{self.reason}; {other.reason}",
            switched=self.switched or other.switched,
            trigger="+".join(dict.fromkeys(t for t in (*self.triggers(), other.trigger) if t)),
        )


@dataclass(frozen=True)
class ReloadResult:
    # "ok", "refused" (nothing touched), "failed" (touched, went wrong; the old serves),
    # "rolled_back" (a new generation served, failed its settle, the old serves again)
    result: str
    message: str
    reason: str = ""
    at: float = 0.0
    duration: float = 0.0
    workers_replaced: int = 0
    nginx_reloaded: bool = False
    trigger: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "result": self.result,
            "message": self.message,
            "reason": self.reason,
            "at": self.at,
            "duration": round(self.duration, 3),
            "workers_replaced": self.workers_replaced,
            "nginx_reloaded": self.nginx_reloaded,
            "trigger": self.trigger,
        }


class Refused(Exception):
    """A check failed before anything was signalled."""


class Failed(Exception):
    """Something was signalled and did not complete."""


class Reloader:
    def __init__(
        self,
        stack: Stack,
        lock: asyncio.Lock,
        notifier: Notifier,
        gate_: gate.Gate,
        restart: Restart | None = None,
    ) -> None:
        self.stack = stack
        self.lock = lock
        self.notifier = notifier
        self.gate = gate_
        self.generations = Generations(stack)
        self.restart = restart
        self.last: ReloadResult | None = None
        self.listeners: list[Callable[[ReloadResult], None]] = []
        self.closed = False
        self.current: asyncio.Task[Any] | None = None  # the task running a reload now
        self.counts: collections.Counter[str] = collections.Counter()
        self.log = logsetup.get("reload")

    def cancel(self) -> None:
        """Cut the reload in progress short (fnud is stopping and cannot wait longer),
        whether it came from the CLI, SIGHUP, a touch or a file change."""
        if self.current is not None and self.lock.locked():
            self.current.cancel()

    async def reload(
        self,
        request: ReloadRequest,
        emit: Emit,
        on_begin: Callable[[], ReloadRequest] | None = None,
    ) -> ReloadResult:
        """Run one gated reload. ``on_begin``, if given, is called once the lock is
        held and returns the request to run (queued requests merge until then)."""
        if self.lock.locked() and self.generations.warm is not None:
            if request.rollback:  # the settling generation is what goes back
                self.generations.rollback_asked.set()
                await emit("a reload is settling: rolling it back")
                async with self.lock:
                    assert self.last is not None
                    return self.last
            self.generations.end_settle.set()  # keep what settled so far, then go
        if self.lock.locked():
            await emit("another reload or start is in progress: waiting for it")
        async with self.lock:
            self.current = asyncio.current_task()
            if on_begin is not None:
                request = on_begin()
            if self.closed:
                self.current = None
                return ReloadResult(
                    "refused", "fnud is stopping", request.reason, time.time(),
                    trigger=request.trigger,
                )
            begun = time.monotonic()
            at = time.time()
            self.notifier.reloading()
            self.generations.end_settle.clear()
            self.generations.rollback_asked.clear()
            self.log.info("reload begins", reason=request.reason)
            try:
                outcome = "ok"
                message, replaced, nginx_done = await self._run(request, emit)
            except Refused as exc:
                outcome, message, replaced, nginx_done = "refused", str(exc), 0, False
            except (Failed, SwitchError) as exc:
                outcome, message, replaced, nginx_done = "failed", str(exc), 0, False
            except RolledBack as exc:
                outcome, message, replaced, nginx_done = "rolled_back", str(exc), 0, False
            except (OSError, ValueError, RuntimeError) as exc:  # e.g. a master gone mid-way
                self.log.exception("reload crashed")
                outcome, message, replaced, nginx_done = "failed", repr(exc), 0, False
            finally:
                self.notifier.ready()
                self.current = None
            return self._record(ReloadResult(
                outcome, message, request.reason, at, time.monotonic() - begun,
                replaced, nginx_done, request.trigger,
            ))

    def _record(self, result: ReloadResult) -> ReloadResult:
        """Remember, count, tell the listeners, log and report one result."""
        if result.result != "refused":
            self.stack.save_state()
        self.last = result
        self.counts[result.result] += 1
        for listener in self.listeners:
            listener(result)
        level = "info" if result.result == "ok" else "error"
        getattr(self.log, level)(
            f"reload {result.result}", detail=result.message, duration=round(result.duration, 2)
        )
        self.notifier.status(f"last reload {result.result}: {result.message}")
        return result

    async def _run(self, request: ReloadRequest, emit: Emit) -> tuple[str, int, bool]:
        stack = self.stack
        if request.rollback:
            if not stack.generation_mode():
                raise Refused("fnud rollback needs [uwsgi] reload = \"generation\"")
            target = self.generations.previous
            if target is None:
                raise Refused("nothing to roll back to: no previous generation")
            try:  # only code that passes the gate runs in a worker, going back too
                await self.gate.release(target.source, emit)
            except gate.Refused as exc:
                raise Refused(f"the previous release {target.directory}: {exc}") from None
            message = await self.generations.rollback(emit)
            return message, len(stack.uwsgi.children()), False
        try:
            passed = await self.gate.run(
                gate.Request(
                    nginx=request.nginx, app=request.app and stack.config.uwsgi.enabled,
                    reread=True,
                ),
                emit,
            )
        except gate.Refused as exc:
            raise Refused(str(exc)) from None
        config, conf, spec = passed.config, passed.conf, passed.spec
        stack.apply(config)  # every check passed: from here on the new config is in force

        parts = []
        nginx_done = False
        if conf is not None:
            digest = nginx.fingerprint(conf)
            if digest != stack.nginx_digest or request.force_nginx:
                await self._reload_nginx(emit)
                stack.resync_nginx_sockets()
                self.notifier.store_fds(stack.held_fds())
                stack.nginx_digest = digest
                nginx_done = True
                parts.append("nginx reloaded")
            else:
                parts.append("nginx unchanged")
        replaced = 0
        if spec is not None:
            if stack.generation_mode() and stack.uwsgi.state is not State.STARTING:
                replaced, how = await self.generations.reload(emit, request.switched)
                stack.ini_digest = stack.current_ini_digest()
            else:
                replaced, how = await self._reload_uwsgi(emit)
            parts.append(f"{replaced} uWSGI workers replaced ({how})")
        return ", ".join(parts), replaced, nginx_done

    async def _ensure_running(self, prog: Program, emit: Emit) -> bool:
        """A program that is not RUNNING is (re)started instead (one already STARTING
        is waited for); True if it was not running."""
        if prog.state is State.RUNNING:
            return False
        if prog.state is State.STARTING:
            await emit(f"{prog.name} is STARTING: waiting for it")
        else:
            if self.restart is None:
                raise Failed(f"{prog.name} is {prog.state.value}")
            await emit(f"{prog.name} is {prog.state.value}: starting it")
            if not await self.restart(prog):
                raise Failed(f"{prog.name} not restarted: fnud is stopping")
        ok = await prog.wait_state(
            [State.RUNNING, State.FATAL, State.BACKOFF], self.stack.config.fnud.start_timeout
        )
        if not ok or not prog.running:
            raise Failed(f"{prog.name} did not start: {prog.last_exit or prog.why}")
        return True

    async def _reload_nginx(self, emit: Emit) -> None:
        prog = self.stack.nginx
        if await self._ensure_running(prog, emit):
            return
        old = nginx.worker_pids(prog.pid)
        mark = prog.lines_seen
        await emit("nginx: sending reload")
        os.kill(prog.pid, nginx.RELOAD)
        deadline = time.monotonic() + self.stack.config.nginx.reload_timeout
        while time.monotonic() < deadline:
            fresh = nginx.worker_pids(prog.pid) - old
            if fresh:
                await emit(f"nginx: new workers {sorted(fresh)}")
                return
            for line in prog.lines_since(mark):
                if "[emerg]" in line or "[alert]" in line:
                    raise Failed(f"nginx kept its old configuration: {line}")
            if not prog.running:
                raise Failed(
                    f"nginx {prog.state.value} during reload: {prog.last_exit or prog.why}"
                )
            await asyncio.sleep(0.05)
        raise Failed(
            f"nginx kept its old workers {sorted(old)} for "
            f"{self.stack.config.nginx.reload_timeout:g}s after reload"
        )

    async def _reload_uwsgi(self, emit: Emit) -> tuple[int, str]:
        stack = self.stack
        prog = stack.uwsgi
        if await self._ensure_running(prog, emit):
            stack.ini_digest = stack.current_ini_digest()
            return len(await self._stats_workers()), "started"
        now = stack.release_dir()
        if stack.uwsgi_driver.release and now != stack.uwsgi_driver.release:
            raise Failed(
                f"the app directory now resolves to {now}, but uWSGI runs from "
                f"{stack.uwsgi_driver.release}: a chain reload would keep loading the old "
                "release; use [uwsgi] reload = \"generation\" (or fnud stop && fnud start)"
            )
        digest = stack.current_ini_digest()
        if digest != stack.ini_digest:
            stack.uwsgi_driver.render()
            letter, how = uwsgi.GRACEFUL_RELOAD, "graceful reload: the uWSGI ini changed"
        else:
            letter, how = uwsgi.CHAIN_RELOAD, "chain reload"
        before = await self._stats()
        progress = uwsgi.ChainProgress.begin(before)
        old_by_id = {w.id: w.pid for w in before.live_workers}
        total = len(progress.old_pids)
        await emit(f"uwsgi: {how} of {total} workers")
        await uwsgi.write_fifo(stack.uwsgi_driver.fifo, letter)
        deadline = time.monotonic() + stack.config.uwsgi.reload_timeout
        stats = before
        while True:
            if not prog.running:
                raise Failed(
                    f"uWSGI {prog.state.value} during reload: {prog.last_exit or prog.why}"
                )
            try:
                stats = await uwsgi.read_stats(stack.uwsgi_driver.stats, timeout=1.0)
            except (OSError, ValueError, asyncio.TimeoutError):
                stats = None  # type: ignore[assignment]
            if stats is not None:
                for worker in progress.newly_replaced(stats):
                    await emit(
                        f"uwsgi worker {worker.id}: pid {old_by_id.get(worker.id, '?')} -> "
                        f"{worker.pid} ({len(progress.reported)}/{total})"
                    )
                if progress.done(stats):
                    break
            if time.monotonic() > deadline:
                stuck = progress.stuck(stats) if stats is not None else []
                names = ", ".join(f"worker {w.id} (pid {w.pid}, {w.status})" for w in stuck)
                raise Failed(
                    f"uWSGI reload incomplete after {stack.config.uwsgi.reload_timeout:g}s: "
                    f"{names or 'stats socket unreachable'}"
                )
            await asyncio.sleep(0.1)
        stack.ini_digest = digest
        return len(stats.live_workers), how.split(":")[0]

    async def _stats(self) -> uwsgi.Stats:
        try:
            return await uwsgi.read_stats(self.stack.uwsgi_driver.stats, timeout=2.0)
        except (OSError, ValueError, asyncio.TimeoutError) as exc:
            raise Failed(f"uWSGI stats socket unreachable: {exc}") from None

    async def _stats_workers(self) -> tuple[uwsgi.Worker, ...]:
        return (await self._stats()).live_workers
