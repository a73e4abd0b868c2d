"""uWSGI adapter: every command-line flag, fifo letter and stats field fnud uses lives in
this package; this module runs one generation of the user's ini.

Each generation has its own master fifo, stats socket and rendered ini in the runtime
dir (render.py), and runs on the sockets fnud holds (``fd://N``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from supervisor.appserver.port import AppServerError, WorkersUnknown
from supervisor.appserver.workers import Stats
from supervisor.common.files import write_atomic
from supervisor.common.progress import Emit
from supervisor.common.runas import RunAs
from supervisor.common.trust import read_untrusted_text
from supervisor.process.program import NotReopenable
from supervisor.process.spawn import Command
from supervisor.runtime.paths import Paths
from supervisor.runtime.release import Release, release_link
from supervisor.sockets.held import Held, Holder
from supervisor.uwsgi import chain, logpath, options
from supervisor.uwsgi.env import child_env
from supervisor.uwsgi.fifo import GRACEFUL_STOP, PAUSE, REOPEN_LOGS, write_fifo
from supervisor.uwsgi.ini import UwsgiIni, parse_ini
from supervisor.uwsgi.reap import reap_paused_workers
from supervisor.uwsgi.render import pins, release_dir, render_ini
from supervisor.uwsgi.server import DISPLAY, NAME, fifo_path
from supervisor.uwsgi.sockets import DEFAULT_BACKLOG, unholdable, uwsgi_specs
from supervisor.uwsgi.stats import read_stats, request_status


def find_binary(configured: str) -> str | None:
    """The uwsgi binary: as configured, else next to this Python, else on PATH."""
    if configured:
        return shutil.which(configured)
    beside = Path(sys.executable).parent / "uwsgi"
    if beside.exists():
        return str(beside)
    return shutil.which("uwsgi")


def argv(binary: str, fifo: Path, ini: Path, stats: Path, logto: Path | None) -> list[str]:
    # fnud's fifo must come before the user's ini: master-fifo is a list option and
    # the first one is slot 0, the one fnud writes to.
    out = [binary, "--master-fifo", str(fifo), "--ini", str(ini), "--stats", str(stats)]
    if logto is not None:
        # uWSGI writes the file itself, so the fifo's 'l' can reopen it after rotation
        out += ["--logto", str(logto), "--log-master"]
    return out


@dataclass(frozen=True)
class UwsgiSettings:
    """What every generation of one config shares (the stack builds it from its plan)."""

    binary: str
    ini_path: Path
    paths: Paths
    environ: Mapping[str, str]  # fnud's own; children get it scrubbed
    log_path: Path
    holder: Holder | None = None  # the held sockets (None: uWSGI binds its own)
    # [fnud] user when fnud is root: the master runs as that user from its exec (the
    # ini's uid, gid and *-as-root options then do nothing: uWSGI is not root)
    run_as: RunAs | None = None
    pinned: bool = False  # generation mode: path options resolved once, at the first start
    log_master: bool = False  # [uwsgi] log_master (see logpath.py)


class UwsgiDriver:
    """Runs one generation of the user's ini under fnud's master fifo and stats socket,
    on the sockets fnud holds."""

    name = NAME
    display = DISPLAY
    orphan_signal: int | None = None
    orphan_grace = 0.0

    def __init__(
        self,
        settings: UwsgiSettings,
        number: int = 1,
        source: Release | None = None,
        require_all: bool = False,
        running: str = "",
        paused: bool = False,
    ) -> None:
        """``source``: what to load instead of the ini on disk (a rollback's release, or
        the serving generation a restarted daemon adopts). ``require_all``: ready only
        when every worker accepts (a generation about to take over). ``running``: the app
        directory the master already running under this driver loaded (a reload that
        changed the settings keeps knowing it). ``paused``: the master under it is
        paused already (a generation a killed daemon left warm)."""
        self.settings = settings
        self.number = number
        self.require_all = require_all
        self.fifo = fifo_path(settings.paths, number)
        self.stats_path = settings.paths.corner(NAME) / f"uwsgi-stats-{number}.sock"
        self.rendered = settings.paths.rendered(NAME, number, ".ini")
        self.log_path = settings.log_path
        self._source = source.source if source is not None else None  # (ini text, pins)
        self._link = source.link if source is not None else None  # (symlink, target then)
        self.release = source.directory if source is not None else running
        self._paused = paused  # 'p' toggles: fnud tracks it
        self._reaper: asyncio.Task[None] | None = None  # ends a resumed generation's workers

    # -- what it runs ----------------------------------------------------------------

    def pinned(self) -> Release | None:
        if self._source is None or not self.settings.pinned:
            return None
        return Release(self.number, self.release, self._source, self._link, NAME)

    def discard(self) -> None:
        for path in (self.rendered, self.fifo, self.stats_path):
            with contextlib.suppress(OSError):
                path.unlink()

    def _read_ini(self) -> UwsgiIni | None:
        try:
            return parse_ini(read_untrusted_text(self.settings.ini_path))
        except (OSError, UnicodeDecodeError):
            return None

    def _expand(self, ini: UwsgiIni) -> Callable[[str], str]:
        """An option value as uWSGI will read it (placeholders against its environment)."""
        env = child_env(self.settings.environ)
        path = self.settings.ini_path
        return lambda v: options.resolve(v, path, ini, env, strict=False) or v

    def holds_sockets(self) -> bool:
        ini = self._read_ini()
        if self.settings.holder is None or ini is None:
            return False
        name = str(self.settings.ini_path)
        return bool(uwsgi_specs(ini, name, self._expand(ini))) and not unholdable(ini, name)

    def bind(self) -> None:
        try:
            text = read_untrusted_text(self.settings.ini_path)
        except (OSError, UnicodeDecodeError) as exc:
            raise OSError(f"{self.settings.ini_path}: cannot read: {exc}") from None
        self.sockets(parse_ini(text))

    def sockets(self, ini: UwsgiIni) -> list[Held]:
        """Hold the ini's sockets (binding those not held yet)."""
        holder = self.settings.holder
        if holder is None:
            return []
        specs = uwsgi_specs(ini, str(self.settings.ini_path), self._expand(ini))
        return holder.ensure(specs, int(ini.value("listen") or DEFAULT_BACKLOG))

    def _take_source(self) -> tuple[str, dict[int, str]]:
        """The ini text and pins this generation loads: read once when pinned (a
        respawn, or a rollback to it, loads what it loaded then), else every start."""
        if self._source is not None and self.settings.pinned:
            return self._source
        path, env = self.settings.ini_path, self.settings.environ
        text = read_untrusted_text(path)
        ini = parse_ini(text)
        pinned = pins(ini, path, env) if self.settings.pinned else {}
        self._source = (text, pinned)
        if options.last(ini, options.CHDIR) is not None:
            chdir = options.chdir(ini, path, child_env(env), strict=False)
            self._link = release_link(str(chdir)) if chdir is not None else None
        return self._source

    def render(self) -> tuple[int, ...]:
        """Write the user's ini, minus what fnud takes away, into the runtime dir;
        return the held fds it names."""
        text, pinned = self._take_source()
        path = self.settings.ini_path
        ini = parse_ini(text)
        chdir_option = options.last(ini, options.CHDIR)
        self.release = (
            pinned.get(chdir_option.line, "") if chdir_option else ""
        ) or release_dir(ini, path, self.settings.environ)
        held = self.sockets(ini)
        replace = {h.spec.line: f"fd://{h.fd}" for h in held}
        replace.update(pinned)
        # uWSGI's vacuum would unlink a held unix socket's file when a generation exits
        drop = frozenset({"vacuum"}) if any(h.spec.path for h in held) else frozenset()
        # 0600, the master's user's: it may hold env secrets; uWSGI re-reads it on 'r'
        rendered = render_ini(text, path, replace, drop).encode()
        run_as = self.settings.run_as
        write_atomic(self.rendered, rendered, 0o600, run_as.owner if run_as else None)
        self._own_log_file()
        return tuple(h.fd for h in held)

    def _own_log_file(self) -> None:
        """With [fnud] user as root, --logto is reopened by that user: the file is theirs."""
        if self.settings.run_as is None:
            return
        owner = self.settings.run_as.owner
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW
        fd = os.open(self.log_path, flags, 0o640)
        try:
            os.fchown(fd, *owner)
        finally:
            os.close(fd)

    def _own_logs(self) -> bool:
        """The user's ini sends uWSGI's log elsewhere itself (logto, req-logger...)."""
        text = self._source[0] if self._source is not None else None
        if text is None:
            try:
                text = self.rendered.read_text(encoding="utf-8")
            except OSError:
                return False
        return bool(options.every(parse_ini(text), options.LOGGING))

    def command(self) -> Command:
        held = self.render()
        self._paused = False
        for stale in (self.fifo, self.stats_path):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        s = self.settings
        logto = None if self._own_logs() or not s.log_master else self.log_path
        return Command(
            argv=argv(s.binary, self.fifo, self.rendered, self.stats_path, logto),
            cwd=str(s.ini_path.parent),
            env=child_env(s.environ),
            pass_fds=held,
            run_as=s.run_as,
        )

    # -- what it is doing ------------------------------------------------------------

    async def workers(self) -> Stats:
        try:
            return await read_stats(self.stats_path, timeout=1.0)
        except (OSError, ValueError, asyncio.TimeoutError) as exc:
            raise WorkersUnknown(f"uWSGI stats socket unreachable: {exc}") from None

    def answer(self, line: str) -> tuple[int, int] | None:
        return request_status(line)

    def observe(self, line: str) -> None:
        """Its stats socket tells everything: the log adds nothing."""

    @property
    def paused(self) -> bool:
        return self._paused

    async def not_ready_reason(self, pid: int) -> str | None:
        """None once a worker serves (every worker, for a generation about to take over)."""
        try:
            stats = await self.workers()
        except WorkersUnknown:
            return "waiting for the uWSGI stats socket"
        if stats.all_ready if self.require_all else stats.serving:
            return None
        live = stats.live_workers
        waiting = [w for w in live if not (w.accepting and w.apps > 0)]
        named = ", ".join(f"worker {w.id} (pid {w.pid}, {w.status})" for w in waiting[:3])
        return (
            f"workers loading the app ({len(live) - len(waiting)}/{len(live)} accepting; "
            f"waiting for {named or 'workers to appear'})"
        )

    def log_level(self, line: str) -> str:
        # uWSGI's per-request log lines; kept out of fnud's own output at info level
        return "debug" if line.startswith("[pid: ") else "info"

    # -- what fnud asks of it --------------------------------------------------------

    async def pause(self, pid: int) -> None:
        """Suspend the workers; nothing when already paused."""
        if not self._paused:
            await write_fifo(self.fifo, PAUSE, timeout=2.0)
            self._paused = True

    async def resume(self, pid: int) -> None:
        if self._paused:
            await write_fifo(self.fifo, PAUSE, timeout=2.0)
            self._paused = False

    async def reopen_logs(self, pid: int) -> None:
        if not (self.settings.log_master or self._own_logs()):
            raise NotReopenable(logpath.DIRECT_NOTE)
        await write_fifo(self.fifo, REOPEN_LOGS, timeout=2.0)

    async def request_stop(self, pid: int) -> None:
        try:
            # a suspended worker never leaves its pause loop to exit: resume first
            if self._paused:  # resume and stop at once, then end the idle workers
                await self.resume(pid)
                await write_fifo(self.fifo, GRACEFUL_STOP, timeout=2.0)
                # beside the stop's own deadline, which still ends whatever is left
                self._reaper = asyncio.get_running_loop().create_task(
                    reap_paused_workers(pid)
                )
                return
            await write_fifo(self.fifo, GRACEFUL_STOP, timeout=2.0)
        except OSError:
            os.kill(pid, signal.SIGINT)  # uWSGI stops on SIGINT too

    async def reload_in_place(
        self, pid: int, alive: Callable[[], str], emit: Emit, timeout: float, changed: bool
    ) -> tuple[int, str]:
        """A chain reload ('c'), or a graceful one ('r') when the ini changed."""
        if changed:
            self.render()
        try:
            return await chain.reload(self.fifo, self.stats_path, alive, emit, timeout, changed)
        except chain.ChainError as exc:
            raise AppServerError(str(exc)) from None
