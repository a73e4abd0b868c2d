"""uWSGI adapter: every command-line flag, fifo letter and stats field fnud uses lives here.

fnud runs the user's ini unchanged in meaning, through a rendered copy in the runtime dir:
options that would escape supervision (``daemonize``), bypass the reload gate
(``touch-chain-reload``, ``touch-reload``) or expose stats on TCP (``stats``) are
commented out there, keeping line numbers, and uWSGI's ``%d``-style magic variables
are expanded for the original file so that relative paths keep working.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import signal
import stat
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from supervisor.common.childenv import child_env
from supervisor.process.program import Command
from supervisor.runtime.paths import Paths
from supervisor.sockets.held import DEFAULT_BACKLOG, Held, Holder, unholdable, uwsgi_specs
from supervisor.uwsgi import logpath, options
from supervisor.uwsgi.ini import UwsgiIni, parse_ini
from supervisor.uwsgi.options import expand_magic as expand_magic  # stack.py uses it here
from supervisor.uwsgi.reap import reap_paused_workers
from supervisor.uwsgi.stats import ChainProgress as ChainProgress
from supervisor.uwsgi.stats import Stats as Stats
from supervisor.uwsgi.stats import Worker as Worker
from supervisor.uwsgi.stats import parse_stats as parse_stats
from supervisor.uwsgi.stats import read_stats as read_stats
from supervisor.uwsgi.stats import request_status as request_status

# master fifo letters (uWSGI docs, "The Master FIFO")
CHAIN_RELOAD = "c"
GRACEFUL_RELOAD = "r"
GRACEFUL_STOP = "q"
REOPEN_LOGS = "l"


def render_ini(
    text: str,
    ini_path: Path,
    replace: Mapping[int, str] | None = None,
    drop: frozenset[str] = frozenset(),
) -> str:
    """The user's ini with taken-away options commented out and magic vars expanded.

    ``replace`` {line: new value}: held sockets (``fd://N``) and pinned release paths.
    Line numbers are preserved, so uWSGI's own messages still point at the user's lines.
    """
    parsed = parse_ini(text)
    dropped = {opt.line for opt in parsed if opt.key in options.TAKEN_AWAY | drop}
    keys = {opt.line: opt.key for opt in parsed}
    lines = text.split("\n")
    out = []
    for number, line in enumerate(lines, start=1):
        if number in dropped:
            out.append("; [fnud: handled by fnud] " + line)
        elif replace and number in replace:
            out.append(f"{keys[number]} = {replace[number]}")  # uWSGI keeps inline comments
        else:
            out.append(options.expand_magic(line, ini_path))
    return "\n".join(out)


def write_private(path: Path, data: bytes, mode: int) -> None:
    """Replace ``path`` atomically with a new file (never following a link there)."""
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.write(fd, data)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def find_binary(configured: str) -> str | None:
    """The uwsgi binary: as configured, else next to this Python, else on PATH."""
    if configured:
        return shutil.which(configured)
    beside = Path(sys.executable).parent / "uwsgi"
    if beside.exists():
        return str(beside)
    return shutil.which("uwsgi")


def argv(
    binary: str,
    fifo: Path,
    ini: Path,
    stats: Path,
    logto: Path | None,
    user: str = "",
    group: str = "",
) -> list[str]:
    # fnud's fifo must come before the user's ini: master-fifo is a list option and
    # the first one is slot 0, the one fnud writes to.
    out = [binary, "--master-fifo", str(fifo), "--ini", str(ini), "--stats", str(stats)]
    if user:  # after the ini: fnud.toml's [fnud] user wins over the ini's uid
        out += ["--uid", user, "--gid", group or user]
    if logto is not None:
        # uWSGI writes the file itself, so the fifo's 'l' can reopen it after rotation
        out += ["--logto", str(logto), "--log-master"]
    return out


async def write_fifo(path: Path, letter: str, timeout: float = 5.0) -> None:
    """Write one command letter to the master fifo.

    The master recreates the fifo after each writer, so ENXIO (no reader yet) and
    ENOENT are retried until ``timeout``.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            # O_NOFOLLOW: the fifo's dir may belong to the workers' user; never write
            # through a link planted there
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
        except OSError as exc:
            if exc.errno not in (errno.ENXIO, errno.ENOENT) or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
            continue
        try:
            if not stat.S_ISFIFO(os.fstat(fd).st_mode):
                raise OSError(errno.EINVAL, f"{path} is not a fifo")
            os.write(fd, letter.encode())
            return
        finally:
            os.close(fd)


def touch_files(
    ini: UwsgiIni, ini_path: Path, workdir: Path, environ: Mapping[str, str] | None = None
) -> list[Path]:
    """Files named by touch-chain-reload/touch-reload, resolved like uWSGI would
    (``environ``: what uWSGI gets; default fnud's own, scrubbed)."""
    env = child_env(os.environ if environ is None else environ)
    out = []
    for opt in options.every(ini, options.TOUCH_RELOAD):
        value = options.resolve(opt.value, ini_path, ini, env, strict=False) or opt.value
        path = Path(value)
        out.append(path if path.is_absolute() else workdir / path)
    return out


#: options naming a path a generation pins (resolved through symlinks once, at its start)
PINNED_OPTIONS = frozenset(
    {*options.CHDIR, *options.WSGI_FILE, *options.PYTHONPATH, *options.VIRTUALENV}
)
PAUSE = "p"  # toggles: suspend the workers / resume them (uwsgi_reap.py: what it costs)


def pins(
    ini: UwsgiIni, ini_path: Path, environ: Mapping[str, str] | None = None
) -> dict[int, str]:
    """{line: resolved path} for every path option: a generation loads only from there,
    whatever a symlink such as ``current -> releases/<id>`` points at later.

    ``environ``: what uWSGI gets (default: fnud's own, scrubbed)."""
    env = child_env(os.environ if environ is None else environ)
    base = ini_path.parent
    workdir = Path(release_dir(ini, ini_path, env))
    out = {}
    for opt in ini:
        if opt.key not in PINNED_OPTIONS or not opt.value.strip():
            continue
        value = options.resolve(opt.value.strip(), ini_path, ini, env, strict=False) or ""
        relative_to = base if opt.key in options.CHDIR else workdir
        out[opt.line] = os.path.realpath(relative_to / value)
    return out


def release_link(chdir: str) -> tuple[str, str] | None:
    """The symlink the app directory is reached through (``current`` in
    ``current -> releases/<id>``) and its target now; None when there is none."""
    path = Path(chdir)
    for candidate in (path, *path.parents):
        try:
            if candidate.is_symlink():
                return str(candidate), os.readlink(candidate)
        except OSError:  # a name too long, a directory we may not read: no link we can use
            return None
    return None


def release_dir(
    ini: UwsgiIni, ini_path: Path, environ: Mapping[str, str] | None = None
) -> str:
    """The app's directory as it resolves now (chdir through symlinks, else the ini's)."""
    env = child_env(os.environ if environ is None else environ)
    chdir = options.chdir(ini, ini_path, env, strict=False) or ini_path.parent
    return os.path.realpath(chdir)


class UwsgiDriver:
    """Runs one generation of the user's ini under fnud's master fifo and stats socket,
    on the sockets fnud holds."""

    name = "uwsgi"
    orphan_signal: int | None = None
    orphan_grace = 0.0

    def __init__(
        self,
        binary: str,
        ini_path: Path,
        paths: Paths,
        environ: Mapping[str, str],
        log_path: Path,
        generation: int = 1,
        holder: Holder | None = None,
    ) -> None:
        self.binary = binary
        self.ini_path = ini_path
        self.log_path = log_path
        self.user = ""  # [fnud] user/group: the workers' identity when fnud is root
        self.group = ""
        self.generation = generation
        self.fifo = paths.uwsgi_fifo(generation)
        self.stats = paths.uwsgi_stats(generation)
        self.rendered = paths.rendered_ini(generation)
        self.owner: tuple[int, int] | None = None  # with [fnud] user as root: its uid, gid
        self.environ = environ
        self.holder = holder
        self.pinned = False  # generation mode: path options resolved at render time
        self.source: tuple[str, dict[int, str]] | None = None  # (ini text, pins) once rendered
        self.link: tuple[str, str] | None = None  # (symlink, target) the release came through
        self.release = ""  # the pinned chdir (status shows it)
        self.paused = False  # 'p' toggles: fnud tracks it
        self.held_fds: tuple[int, ...] = ()
        self.require_all = False  # ready when every worker accepts (a new generation)
        self.reaper: asyncio.Task[None] | None = None  # ends a resumed generation's workers

    def holds_sockets(self) -> bool:
        if self.holder is None:
            return False
        try:
            ini = parse_ini(self.ini_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            return False
        name = str(self.ini_path)
        specs = uwsgi_specs(ini, name, self._expand(ini))
        return bool(specs) and not unholdable(ini, name)

    def _expand(self, ini: UwsgiIni) -> Callable[[str], str]:
        """An option value as uWSGI will read it (placeholders against its environment)."""
        env = child_env(self.environ)
        return lambda v: options.resolve(v, self.ini_path, ini, env, strict=False) or v

    def sockets(self, ini: UwsgiIni) -> list[Held]:
        """Hold the ini's sockets (binding those not held yet)."""
        if self.holder is None:
            return []
        specs = uwsgi_specs(ini, str(self.ini_path), self._expand(ini))
        return self.holder.ensure(specs, int(ini.value("listen") or DEFAULT_BACKLOG))
        self.log_master: bool = False  # [uwsgi] log_master (see logpath.py)
        self.own_logs: bool = False  # the user's ini sends the log elsewhere itself

    def render(self) -> None:
        """Write the user's ini, minus what fnud takes away, into the runtime dir.

        A generation keeps the text and pins it rendered first (``source``): a respawn,
        or a rollback to it, loads what it loaded then."""
        if self.source is None or not self.pinned:
            text = self.ini_path.read_text(encoding="utf-8")
            ini = parse_ini(text)
            pinned = pins(ini, self.ini_path, self.environ) if self.pinned else {}
            self.source = (text, pinned)
            if options.last(ini, options.CHDIR) is not None:
                chdir = options.chdir(ini, self.ini_path, child_env(self.environ), strict=False)
                self.link = release_link(str(chdir)) if chdir is not None else None
        text, pinned = self.source
        ini = parse_ini(text)
        chdir_option = options.last(ini, options.CHDIR)
        self.release = (
            pinned.get(chdir_option.line, "") if chdir_option else ""
        ) or release_dir(ini, self.ini_path, self.environ)
        held = self.sockets(ini)
        replace = {h.spec.line: f"fd://{h.fd}" for h in held}
        replace.update(pinned)
        # uWSGI's vacuum would unlink a held unix socket's file when a generation exits
        drop = frozenset({"vacuum"}) if any(h.spec.path for h in held) else frozenset()
        self.held_fds = tuple(h.fd for h in held)
        rendered = render_ini(text, self.ini_path, replace, drop)
        # 0644 in the runtime dir: uWSGI re-reads it on 'r' after dropping privileges
        write_private(self.rendered, rendered.encode(), 0o644)
        if self.owner is not None:  # --logto is reopened by that user too
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(
                self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o640
            )
            try:
                os.fchown(fd, *self.owner)
            finally:
                os.close(fd)

    def command(self) -> Command:
        self.render()
        self.paused = False
        own_logs = bool(options.every(parse_ini(self.rendered.read_text()), options.LOGGING))
        self.own_logs = own_logs
        for stale in (self.fifo, self.stats):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        return Command(
            argv=argv(
                self.binary, self.fifo, self.rendered, self.stats,
                None if own_logs or not self.log_master else self.log_path,
                self.user, self.group,
            ),
            cwd=str(self.ini_path.parent),
            env=child_env(self.environ),
            pass_fds=self.held_fds,
        )

    async def pause(self, paused: bool, pid: int) -> None:
        """Suspend (True) or resume (False) the workers of master ``pid``; nothing when
        already so. A resume wakes every thread, not one per worker."""
        if self.paused == paused:
            return
        await write_fifo(self.fifo, PAUSE, timeout=2.0)
        self.paused = paused

    async def not_ready_reason(self, pid: int) -> str | None:
        """None once a worker serves (every worker, for a generation about to take over)."""
        try:
            stats = await read_stats(self.stats, timeout=1.0)
        except (OSError, ValueError, asyncio.TimeoutError):
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

    async def reopen_logs(self, pid: int) -> None:
        if not (self.log_master or self.own_logs):
            raise logpath.NotReopenable(logpath.DIRECT_NOTE)
        await write_fifo(self.fifo, REOPEN_LOGS, timeout=2.0)

    async def request_stop(self, pid: int) -> None:
        try:
            # a suspended worker never leaves its pause loop to exit: resume first
            if self.paused:  # resume and stop at once, then end the idle workers
                await write_fifo(self.fifo, PAUSE, timeout=2.0)
                self.paused = False
                await write_fifo(self.fifo, GRACEFUL_STOP, timeout=2.0)
                # beside the stop's own deadline, which still ends whatever is left
                self.reaper = asyncio.get_running_loop().create_task(
                    reap_paused_workers(pid)
                )
                return
            await write_fifo(self.fifo, GRACEFUL_STOP, timeout=2.0)
        except OSError:
            os.kill(pid, signal.SIGINT)  # uWSGI stops on SIGINT too

    def log_level(self, line: str) -> str:
        # uWSGI's per-request log lines; kept out of fnud's own output at info level
        return "debug" if line.startswith("[pid: ") else "info"
