"""One supervised program: its process, its state machine, its output.

The program never decides on its own what happens after an exit: it reports events
(``Exited``, ``Ready``) to the daemon's queue, and the daemon's loop moves the state
machine. A driver (nginx or an app server's) supplies the command, the readiness test
and the graceful stop.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import psutil

from supervisor.logs import logsetup, tail
from supervisor.policy import restart as policy
from supervisor.process.events import Enqueue, Exited, Ready, Retry
from supervisor.process.group import child_pids, group_members, kill_group
from supervisor.process.spawn import Command, start
from supervisor.process.states import State, check_transition


class NotReopenable(Exception):
    """This program's log cannot be reopened in its current mode (a note, not a failure)."""


class Driver(Protocol):
    """What a program needs to know about the binary it runs."""

    name: str
    #: for workers a dead master left behind: a signal to finish their requests, and how
    #: long they get (nginx's keep serving on the listen socket; some exit by themselves)
    orphan_signal: int | None
    orphan_grace: float

    def command(self) -> Command: ...

    def holds_sockets(self) -> bool:
        """Every listening socket of the next spawn is held by fnud (a new process can
        start before the old one's leftovers are gone)."""
        ...

    async def not_ready_reason(self, pid: int) -> str | None:
        """None once the program serves; else why it is still STARTING."""
        ...

    async def request_stop(self, pid: int) -> None:
        """Ask the process to stop gracefully (signal or fifo letter)."""
        ...

    def log_level(self, line: str) -> str:
        """'debug' for chatter such as per-request access lines, else 'info'."""
        ...

    async def reopen_logs(self, pid: int) -> None:
        """Make the program reopen the log files it writes itself (raises
        :class:`NotReopenable` when its mode does not allow it)."""
        ...


READY_POLL = 0.05  # while STARTING: how often the driver is asked whether it serves yet

_ERRORISH = ("error", "emerg", "fail", "unable", "cannot", "can't", "no such", "denied",
             "exception", "game over", "in use", "invalid", "not found")


D = TypeVar("D", bound=Driver)


@dataclass(eq=False)  # programs are compared by identity
class Program(Generic[D]):
    driver: D
    enqueue: Enqueue
    start_timeout: float = 30.0
    state: State = State.STOPPED
    pid: int = 0
    started_at: float = 0.0  # monotonic time of the last spawn
    ready_at: float = 0.0
    spawned_wall: float = 0.0
    exited_wall: float = 0.0  # when the last process was seen to exit (0: running)
    quick_failures: int = 0
    restarts: int = 0
    probe_restarts: int = 0
    last_exit: str = ""
    why: str = ""
    lines_seen: int = 0
    output: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=40))
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _timer: asyncio.TimerHandle | None = None
    log_path: Path = Path("/dev/null")
    # False: lines are read (for failure reasons and observers) but not logged again;
    # app server generations share one log file and only the serving one echoes it
    echo: bool = True
    observers: list[Callable[[str], None]] = field(default_factory=list)
    _tail: tail.Tail | None = None
    _tail_pid: int = 0

    def __post_init__(self) -> None:
        self.log = logsetup.get("program").bind(program=self.driver.name)
        self.output_log = logsetup.get(self.driver.name)

    @property
    def name(self) -> str:
        return self.driver.name

    def use(self, driver: D) -> None:
        """Spawn with ``driver`` from now on (a reload changed the program's settings;
        the running process keeps what it was started with)."""
        self.driver = driver

    def children(self) -> set[int]:
        """PIDs of the master's children (its workers)."""
        return child_pids(self.pid)

    @property
    def running(self) -> bool:
        return self.state is State.RUNNING

    def mark_ready(self) -> None:
        self.ready_at = time.monotonic()
        self.why = ""

    def count_restart(self, probe: bool = False) -> None:
        self.restarts += 1
        if probe:
            self.probe_restarts += 1

    def record_exit(self, returncode: int) -> str:
        """Remember how the process ended; return the most telling output line."""
        reason = f"exited with code {returncode}"
        detail = self.failure_reason()
        self.last_exit = f"{reason}: {detail}" if detail else reason
        return detail

    def exit_facts(self, now: float) -> policy.ExitFacts:
        return policy.ExitFacts(
            started_at=self.started_at, now=now, was_running=self.running,
            quick_failures=self.quick_failures,
        )

    async def follow(self, decision: policy.Decision) -> None:
        """EXITED -> BACKOFF (retry scheduled) or FATAL (retry after the cool-down)."""
        self.quick_failures = decision.quick_failures
        if isinstance(decision, policy.GiveUp):
            await self.transition(
                State.FATAL, reason=self.last_exit, failures=decision.quick_failures
            )
            if decision.cooldown > 0:
                self.schedule(decision.cooldown)
            return
        await self.transition(State.BACKOFF, retry_in=decision.delay)
        self.schedule(decision.delay)

    # -- state machine -------------------------------------------------------------

    async def transition(self, new: State, **info: Any) -> None:
        old = self.state
        check_transition(self.name, old, new)
        self.state = new
        self.log.info("state", old=old.value, new=new.value, pid=self.pid or None, **info)
        async with self._changed:
            self._changed.notify_all()

    async def wait_state(self, accept: Iterable[State], timeout: float) -> bool:
        wanted = frozenset(accept)
        async with self._changed:
            try:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self.state in wanted), timeout
                )
            except asyncio.TimeoutError:
                return False
        return True

    # -- process -------------------------------------------------------------------

    async def spawn(self) -> None:
        """STOPPED/BACKOFF/FATAL/EXITED -> STARTING: start the process and watch it.

        Exit is noticed through a pidfd: it works for children and, after a daemon
        restart, for adopted processes alike. Output goes to the program's log file,
        which fnud tails (see tail.py).
        """
        self.cancel_timer()
        self.why = "spawning"
        try:
            cmd = self.driver.command()
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "ab") as out:
                position = out.tell()
                proc = start(cmd, out)
        except (OSError, ValueError) as exc:  # unreadable ini, missing binary, bad bytes
            self.pid = 0
            where = getattr(exc, "filename", None) or self.name
            self.last_exit = f"{where}: {getattr(exc, 'strerror', None) or exc}"
            self.output.append(self.last_exit)
            await self.transition(State.STARTING)
            self.enqueue(Exited(self.name, 0, 127))
            return
        self.pid = proc.pid
        self.started_at = time.monotonic()
        self.spawned_wall = time.time()
        self.exited_wall = 0.0
        self.ready_at = 0.0
        await self.transition(State.STARTING, argv=" ".join(cmd.argv))
        self._follow(position, proc.pid)
        self._watch_exit(proc.pid, proc.wait)
        self._track(self._watch_ready(proc.pid))

    async def adopt(self, pid: int, started_wall: float) -> None:
        """Take over a process a previous daemon started (it is not our child)."""
        self.pid = pid
        self.started_at = time.monotonic() - max(0.0, time.time() - started_wall)
        self.spawned_wall = started_wall
        self.exited_wall = 0.0
        self.ready_at = time.monotonic()
        await self.transition(State.STARTING, adopted=True)
        await self.transition(State.RUNNING, adopted=True)
        self._follow(tail.end_of(self.log_path), pid)
        self._watch_exit(pid, None)

    def _track(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _follow(self, position: int, pid: int) -> None:
        if self._tail is not None:
            self._tail.close()
        self._tail = tail.Tail(self.log_path, position)
        self._tail_pid = pid
        self._track(self._tail_loop(self._tail))

    async def _tail_loop(self, follower: tail.Tail) -> None:
        """Take the log's lines in as they come (inotify: an idle log wakes nobody)."""
        while follower is self._tail:
            self.drain()
            if follower.rotated():  # the program reopened its log after a rotation
                self.drain()
                follower.close()
                self._tail = follower = tail.Tail(self.log_path, 0)
                continue
            await follower.changed()

    def unfollow(self) -> None:
        """Take the last lines in, then stop following the log (a generation that is
        gone for good: its tail's file and inotify fds would stay open otherwise)."""
        self.cancel_timer()
        self.drain()
        follower, self._tail = self._tail, None
        if follower is not None:
            follower.close()  # its loop wakes and ends: it is no longer self._tail

    def take_over_log(self, previous: Program[Any]) -> None:
        """Echo the log shared with ``previous`` from where it has echoed it up to now."""
        previous.drain()
        if self._tail is not None and previous._tail is not None:
            self._tail.take_over(previous._tail)

    def drain(self) -> None:
        """Take in every line the program has written so far."""
        if self._tail is None:
            return
        for line in self._tail.read_lines():
            if not line:
                continue
            for observe in self.observers:
                observe(line)
            if not self.echo:
                self.output.append(line)
                self.lines_seen += 1
                continue
            level = self.driver.log_level(line)
            if level != "debug":
                self.output.append(line)
                self.lines_seen += 1
            getattr(self.output_log, level)(line, program=self.name, pid=self._tail_pid)

    def _watch_exit(self, pid: int, reap: Callable[[], int] | None) -> None:
        """Enqueue Exited when ``pid`` ends; ``reap`` gives a child's exit code."""
        loop = asyncio.get_running_loop()
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            self.enqueue(Exited(self.name, pid, reap() if reap else -1))
            return

        def exited() -> None:
            loop.remove_reader(pidfd)
            os.close(pidfd)
            self.exited_wall = time.time()
            code = reap() if reap is not None else -1  # an adopted process: code unknown
            self.drain()
            self.enqueue(Exited(self.name, pid, code))

        loop.add_reader(pidfd, exited)

    async def _watch_ready(self, pid: int) -> None:
        deadline = self.started_at + self.start_timeout
        while self.pid == pid and self.state is State.STARTING:
            try:
                reason = await self.driver.not_ready_reason(pid)
            except Exception as exc:  # a probe must never kill the loop
                reason = f"readiness probe failed: {exc}"
            if reason is None:
                self.enqueue(Ready(self.name, pid))
                return
            self.why = reason
            if time.monotonic() > deadline:
                self.last_exit = f"not ready after {self.start_timeout:g}s: {reason}"
                self.log.error("start timeout", reason=reason)
                kill_group(pid)
                return
            await asyncio.sleep(READY_POLL)

    def lines_since(self, mark: int) -> list[str]:
        """Output lines (kept ones) that arrived after ``lines_seen`` was ``mark``."""
        count = min(self.lines_seen - mark, len(self.output))
        return list(self.output)[-count:] if count > 0 else []

    def failure_reason(self) -> str:
        """The most telling line of recent output, for a one-line error."""
        for line in reversed(self.output):
            if any(word in line.lower() for word in _ERRORISH):
                return line.strip()
        return self.output[-1].strip() if self.output else ""

    async def stop(self, deadline: float) -> None:
        """Graceful stop, then SIGKILL to the whole group at ``deadline`` (monotonic)."""
        self.cancel_timer()
        if self.state in (State.BACKOFF, State.FATAL, State.EXITED):
            await self.transition(State.STOPPED)
            await self.reap_leftovers()  # e.g. orphaned nginx workers still serving
            return
        if self.state is State.STOPPED:
            return
        pid = self.pid
        if self.state is not State.STOPPING:
            await self.transition(State.STOPPING)
            if pid <= 0:  # a spawn that failed: its Exited event finishes the job
                await self.wait_state([State.STOPPED], 5.0)
                return
            try:
                await self.driver.request_stop(pid)
            except OSError as exc:
                self.log.warning("graceful stop request failed", error=str(exc))
                kill_group(pid, signal.SIGTERM)
        remaining = max(0.0, deadline - time.monotonic())
        if not await self.wait_state([State.STOPPED], remaining):
            self.log.warning("stop deadline passed, killing the process group", pgid=pid)
            kill_group(pid)
            await self.wait_state([State.STOPPED], 10.0)
        await self.reap_group(pid)

    async def reap_group(
        self, pgid: int, graceful: int | None = None, grace: float = 0.0, timeout: float = 5.0
    ) -> None:
        """Make sure nothing of a (dead) master's process group lingers.

        With ``graceful``, the group first gets that signal and ``grace`` seconds to
        finish in-flight work (orphaned nginx workers); then SIGKILL.
        """
        if pgid <= 0:
            return
        if graceful is not None and kill_group(pgid, graceful):
            end = time.monotonic() + grace
            while group_members(pgid) and time.monotonic() < end:
                await asyncio.sleep(0.05)
        kill_group(pgid)
        end = time.monotonic() + timeout
        while group_members(pgid) and time.monotonic() < end:
            await asyncio.sleep(0.05)

    def leftovers_of_last(self) -> tuple[int, float]:
        """(process group, exit time) of the last process, for :meth:`reap_leftovers`."""
        return self.pid, self.exited_wall

    async def reap_leftovers(self, last: tuple[int, float] | None = None) -> None:
        """What the last process left in its group: orphaned workers first get the
        driver's graceful signal (nginx: finish in-flight requests), then SIGKILL.

        Only processes created before the master's exit count: the group's number may
        have been reused since (a FATAL program stopped hours later)."""
        pgid, exited_wall = last or self.leftovers_of_last()
        if pgid <= 0:
            return

        def leftovers() -> list[psutil.Process]:
            limit = exited_wall + 1.0 if exited_wall else time.time()
            found = []
            for proc in group_members(pgid):
                with contextlib.suppress(psutil.Error):
                    if proc.create_time() <= limit:
                        found.append(proc)
            return found

        for sig, grace in ((self.driver.orphan_signal, self.driver.orphan_grace),
                           (signal.SIGKILL, 5.0)):
            procs = leftovers()
            if not procs or sig is None:
                continue
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    proc.send_signal(sig)
            end = time.monotonic() + grace
            while leftovers() and time.monotonic() < end:
                await asyncio.sleep(0.05)

    def schedule(self, delay: float) -> None:
        self.cancel_timer()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(delay, self.enqueue, Retry(self.name))

    def cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def uptime(self) -> float:
        if self.state is State.RUNNING and self.ready_at:
            return time.monotonic() - self.started_at
        return 0.0
