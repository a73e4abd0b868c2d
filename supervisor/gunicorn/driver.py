"""gunicorn adapter: one generation is one gunicorn master, ``python -m gunicorn -c
<fnud's wrapper config> module:callable`` run by the app's own interpreter, on the socket
fnud holds (systemd's LISTEN_FDS protocol).

Each generation has its own wrapper config (wrapper.py, hooks.py), pinned copy of your
conf, events file and control byte; they carry its number, so a restarted daemon finds
them again. The held socket reaches gunicorn as fd 3: it comes in as stdin and ``sh``
moves it there before it execs gunicorn in place, so LISTEN_PID is gunicorn's own pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import stat
import struct
import time
from collections.abc import Callable

from supervisor.appserver.port import AppServerError, CannotPause, WorkersUnknown
from supervisor.appserver.workers import Stats, Worker
from supervisor.common.files import write_atomic
from supervisor.common.progress import Emit
from supervisor.common.trust import owned_like_its_dir
from supervisor.gunicorn.answers import access_status, is_access_line
from supervisor.gunicorn.app import CHDIR, GunicornSettings, gunicorn_env, take_source
from supervisor.gunicorn.events import Events
from supervisor.gunicorn.server import CONF_SUFFIX, DISPLAY, NAME
from supervisor.gunicorn.wrapper import render
from supervisor.process.group import child_pids
from supervisor.process.program import NotReopenable
from supervisor.process.spawn import Command
from supervisor.runtime.release import Release, release_link

#: sh, with the held socket as its stdin: fd 3 for gunicorn, stdin back to /dev/null
EXEC = 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@" 3<&0 0</dev/null'
LOG_NOTE = (
    "gunicorn.log is gunicorn's stdout and stderr, written by its processes directly: "
    "rotate it with copytruncate (log files named in your conf were reopened)"
)
RESUME_WAIT = 2.0  # how long resume() waits for every parked worker to take requests


def listen_queue(sock: socket.socket | None) -> int:
    """Connections waiting to be accepted on a held TCP socket (TCP_INFO's unacked for
    a listening socket); 0 when not known (a unix socket)."""
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return 0
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 32)
    except OSError:
        return 0
    return int(struct.unpack_from("I", info, 24)[0]) if len(info) >= 28 else 0


class GunicornDriver:
    """One generation: a gunicorn master under fnud's wrapper config, on the held socket."""

    name = NAME
    display = DISPLAY
    # a worker whose master died finishes the request it has, then exits
    orphan_signal: int | None = signal.SIGTERM
    orphan_grace = 5.0

    def __init__(
        self,
        settings: GunicornSettings,
        number: int = 1,
        source: Release | None = None,
        require_all: bool = False,
        running: str = "",
        paused: bool = False,
    ) -> None:
        """``source``: what to load instead of the conf and directory now on disk (a
        rollback's release, or the serving generation a restarted daemon adopts).
        ``require_all``: ready only when every worker loaded the app (a generation about
        to take over). ``running``: the directory a running master loaded. ``paused``:
        its workers are parked already (a generation a killed daemon left warm)."""
        self.settings = settings
        self.number = number
        self.require_all = require_all
        corner = settings.paths.corner(NAME)
        self.events = Events(corner / f"{NAME}-{number}.events")
        self.control = corner / f"{NAME}-{number}.ctl"
        self.rendered = settings.paths.rendered(NAME, number, CONF_SUFFIX)
        self.pinned_conf = settings.paths.rendered(NAME, number, ".user.py")
        self.log_path = settings.log_path
        self._source = source.source if source is not None else None
        self._link = source.link if source is not None else None
        self.release = source.directory if source is not None else running
        self._answers: dict[int, int] = {}  # requests answered, by worker pid
        self._paused = paused

    # -- what it runs ----------------------------------------------------------------

    def pinned(self) -> Release | None:
        if self._source is None:
            return None
        return Release(self.number, self.release, self._source, self._link, NAME)

    def _take_source(self) -> tuple[str, dict[int, str]]:
        """The conf's text and the app directory, read once: a respawn of this master,
        or a rollback to it, loads what it loaded then."""
        if self._source is None:
            self._source = take_source(self.settings)
            self._link = release_link(str(self.settings.chdir))
        return self._source

    def discard(self) -> None:
        for path in (self.rendered, self.pinned_conf, self.events.path, self.control):
            with contextlib.suppress(OSError):
                path.unlink()

    def holds_sockets(self) -> bool:
        return self.settings.holder is not None

    def bind(self) -> None:
        if self.settings.holder is not None:
            self.settings.holder.ensure([self.settings.bind])

    def _held_socket(self) -> socket.socket | None:
        holder = self.settings.holder
        held = holder.held.get(self.settings.bind.key) if holder is not None else None
        return held.sock if held is not None else None

    def _write_files(self, text: str, chdir: str) -> None:
        """The pinned conf, the wrapper config, a fresh events file and control byte."""
        s = self.settings
        owner = s.run_as.owner if s.run_as is not None else None  # the arbiter reads them
        write_atomic(self.pinned_conf, text.encode(), 0o600, owner)
        write_atomic(self.rendered, render({
            "user_conf": str(self.pinned_conf) if text else "",
            "user_conf_name": str(s.conf) if s.conf is not None else "gunicorn.conf.py",
            "chdir": chdir, "events": str(self.events.path), "control": str(self.control),
            "proc_name": f"fnud {self.rendered}", "workers": s.workers, "threads": s.threads,
        }).encode(), 0o600, owner)
        for path, content in ((self.events.path, b""), (self.control, b"\0" * 4096)):
            path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # never write through a link the workers' user planted
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                os.write(fd, content)
                if owner is not None:  # its workers write events, map the control byte
                    os.fchown(fd, *owner)
            finally:
                os.close(fd)

    def command(self) -> Command:
        text, pins = self._take_source()
        chdir = pins.get(CHDIR) or os.path.realpath(self.settings.chdir)
        self.release = chdir
        self._write_files(text, chdir)
        self.events.reset()
        self._answers.clear()
        self._paused = False
        s = self.settings
        argv = [s.python, "-m", "gunicorn", "-c", str(self.rendered)]
        sock = self._held_socket()
        if sock is None:  # nothing held: gunicorn binds the address itself
            return Command([*argv, "--bind", s.bind.value, s.app], chdir,
                           gunicorn_env(s.environ), run_as=s.run_as)
        return Command(
            argv=["/bin/sh", "-c", EXEC, "sh", *argv, s.app], cwd=chdir,
            env=gunicorn_env(s.environ), stdin=sock.fileno(), run_as=s.run_as,
        )

    # -- what it is doing ------------------------------------------------------------

    def _master(self) -> int:
        self.events.read()
        return self.events.master

    async def workers(self) -> Stats:
        master = self._master()
        if not master:
            raise WorkersUnknown("gunicorn's master has not said it is ready")
        live = sorted(child_pids(master))
        ready, parked = self.events.ready, self.events.parked
        for gone in set(self._answers) - set(live):
            del self._answers[gone]
        workers = tuple(
            Worker(
                id=ready.get(pid, 0), pid=pid,
                status="paused" if pid in parked else ("ready" if pid in ready else "loading"),
                accepting=pid in ready and pid not in parked, apps=int(pid in ready),
                requests=self._answers.get(pid, 0), exceptions=0, rss=0,
            )
            for pid in live
        )
        return Stats(master, listen_queue(self._held_socket()), workers, self.events.exits)

    def answer(self, line: str) -> tuple[int, int] | None:
        return access_status(line)

    def observe(self, line: str) -> None:
        seen = access_status(line)
        if seen is not None:
            self._answers[seen[0]] = self._answers.get(seen[0], 0) + 1

    async def not_ready_reason(self, pid: int) -> str | None:
        """None once a worker loaded the app (every worker, for a generation about to
        take over)."""
        if self._master() != pid:
            return "waiting for gunicorn's master (reading its config)"
        live = child_pids(pid)
        ready = [w for w in live if w in self.events.ready]
        wanted = max(self.events.wanted, 1)
        if len(ready) >= (wanted if self.require_all else 1):
            return None
        waiting = sorted(live - set(ready))
        named = ", ".join(f"pid {w}" for w in waiting[:3])
        return (
            f"workers loading the app ({len(ready)}/{wanted} ready; "
            f"waiting for {named or 'workers to start'})"
        )

    def log_level(self, line: str) -> str:
        return "debug" if is_access_line(line) else "info"

    # -- what fnud asks of it --------------------------------------------------------

    def _kick(self, master: int) -> None:
        """SIGURG to the master's workers that loaded the app: look at the control byte
        now (never to a pid the events file names alone)."""
        for worker in child_pids(master) & set(self.events.ready):
            with contextlib.suppress(OSError):
                os.kill(worker, signal.SIGURG)

    def _set_paused(self, master: int, paused: bool) -> None:
        fd = os.open(self.control, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or not owned_like_its_dir(fd, self.control):
                raise OSError(f"{self.control}: not the generation's control file")
            os.pwrite(fd, b"\1" if paused else b"\0", 0)
        finally:
            os.close(fd)
        self._paused = paused
        self._kick(master)

    @property
    def paused(self) -> bool:
        return self._paused

    async def pause(self, pid: int) -> None:
        """Every worker stops taking requests after the one it has (sync: parked at the
        top of its loop; gthread: no longer polling the socket)."""
        if self._master() != pid or not self.events.pause:
            raise CannotPause(
                "its workers cannot stop taking requests and stay warm (fnud pauses sync "
                "and gthread workers only)"
            )
        if not self._paused:
            self._set_paused(pid, True)

    async def resume(self, pid: int) -> None:
        """Every worker takes requests again; returns once they all do (or after a
        short wait: the control byte is cleared either way)."""
        if not self._paused:
            return
        self._set_paused(pid, False)
        deadline = time.monotonic() + RESUME_WAIT
        while self.events.parked and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
            self.events.read()
            self.events.parked &= child_pids(pid)

    async def reopen_logs(self, pid: int) -> None:
        os.kill(pid, signal.SIGUSR1)  # files your conf names; its stdout stays as it is
        raise NotReopenable(LOG_NOTE)

    async def request_stop(self, pid: int) -> None:
        """SIGTERM: gunicorn's graceful stop (a parked worker leaves its park for it)."""
        os.kill(pid, signal.SIGTERM)

    async def reload_in_place(
        self, pid: int, alive: Callable[[], str], emit: Emit, timeout: float, changed: bool
    ) -> tuple[int, str]:
        raise AppServerError("gunicorn reloads by starting a new generation only")

