"""One daemon per runtime dir: an exclusive flock on fnud.lock, which holds its pid."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path


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


DYING_WAIT = 3.0  # seconds a killed daemon's lock may outlive its main thread


def lock_holder(path: Path, dying_wait: float = DYING_WAIT) -> int | None:
    """PID of the daemon holding the lock, or None when nobody holds it.

    A daemon just killed (kill -9) can still hold the lock while its main thread is
    already a zombie: the kernel releases the lock when the last of its threads has
    exited. Such a holder is waited for (up to ``dying_wait`` seconds), so `fnud start`
    right after the kill starts a daemon instead of saying "already running"."""
    deadline = time.monotonic() + dying_wait
    while True:
        holder = _holder(path)
        if holder is None or holder < 0 or _alive(holder) or time.monotonic() >= deadline:
            return holder
        time.sleep(0.01)


def _holder(path: Path) -> int | None:
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


def _alive(pid: int) -> bool:
    """The process runs (not gone, not a zombie: /proc/PID/stat's state)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rpartition(b")")[2].split()[:1]
    except OSError:
        return False
    return state not in ([b"Z"], [b"X"], [])
