"""The runtime directory: where fnud keeps its socket, lock, fifo and stats socket.

It is created 0700 and must belong to the user running fnud: nothing in it may be
readable, writable or replaceable by another local user. (With [fnud] user as root it is
0711, so that uWSGI, running as that user, reaches its own 0700 subdir.)
"""

from __future__ import annotations

import fcntl
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the thin CLI imports this module: no config parser at run time
    from supervisor.config.schema import Config


class RuntimeDirError(Exception):
    pass


@dataclass(frozen=True)
class Paths:
    root: Path
    nginx_prefix: Path
    log_dir: Path

    @classmethod
    def from_config(cls, config: Config) -> Paths:
        return cls(config.fnud.runtime_dir, config.nginx_prefix, config.fnud.log_dir)

    @property
    def socket(self) -> Path:
        return self.root / "fnud.sock"

    @property
    def lock(self) -> Path:
        return self.root / "fnud.lock"

    @property
    def uwsgi_dir(self) -> Path:
        """uWSGI's own corner: its master recreates the fifo and serves the stats socket
        after dropping privileges, so with [fnud] user it belongs to that user."""
        return self.root / "uwsgi"

    def uwsgi_fifo(self, generation: int) -> Path:
        return self.uwsgi_dir / f"uwsgi-{generation}.fifo"

    def uwsgi_stats(self, generation: int) -> Path:
        return self.uwsgi_dir / f"uwsgi-stats-{generation}.sock"

    def rendered_ini(self, generation: int) -> Path:
        """The rendered ini: in the root-owned runtime dir, not in uWSGI's own corner (a
        file there could be a link planted by the app's user)."""
        return self.root / f"uwsgi-{generation}.ini"

    @property
    def rendered_ini_prefix(self) -> str:
        """What every generation's uWSGI command line names (survivors are recognised by it)."""
        return str(self.root / "uwsgi-")

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def previous_release(self) -> Path:
        """What `fnud rollback` goes back to; kept across daemon restarts and stops."""
        return self.root / "previous-release.json"

    @property
    def daemon_log(self) -> Path:
        return self.log_dir / "fnud.log"


def ensure_private_dir(path: Path, owner: tuple[int, int] | None = None) -> None:
    """Create the runtime dir 0700 (0711 when workers run as ``owner``, who must reach
    their own subdir), or check an existing one is ours and not open to others.

    An existing dir with more permissions than that is refused, not silently changed:
    whatever another user could have planted in it would stay.
    """
    mode = 0o711 if owner is not None else 0o700
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.lstat()
    except OSError as exc:
        raise RuntimeDirError(f"{path}: cannot create runtime dir: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise RuntimeDirError(f"{path}: runtime dir is not a directory")
    if info.st_uid != os.geteuid():
        raise RuntimeDirError(f"{path}: runtime dir belongs to uid {info.st_uid}, not to us")
    current = stat.S_IMODE(info.st_mode)
    if current & ~mode & 0o7077 and current != 0o711:  # 0711: ours, from an earlier user
        raise RuntimeDirError(
            f"{path}: runtime dir has mode {current:o}, open to other users: "
            f"use a new directory (fnud creates it {mode:o})"
        )
    if current != mode:
        os.chmod(path, mode)
    sub = path / "uwsgi"
    sub.mkdir(mode=0o700, exist_ok=True)
    if owner is not None:
        os.chown(sub, *owner)
    os.chmod(sub, 0o700)


class Lock:
    """An exclusive flock on fnud.lock, held for the daemon's lifetime; holds its pid."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = -1

    def acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def lock_holder(path: Path) -> int | None:
    """PID of the daemon holding the lock, or None when nobody holds it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 64).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
