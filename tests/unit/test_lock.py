"""One daemon per runtime dir: the lock, and a holder killed a moment ago."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from supervisor.runtime.lock import Lock, lock_holder


def _dead_pid() -> int:
    """A PID no process has: above the kernel's largest pid_max (2**22)."""
    return 2**22 + 1


def test_a_live_holder_is_named(tmp_path: Path) -> None:
    lock = Lock(tmp_path / "fnud.lock")
    assert lock_holder(lock.path) is None
    assert lock.acquire()
    try:
        assert lock_holder(lock.path) == os.getpid()
        assert not Lock(lock.path).acquire()  # a second daemon is refused
    finally:
        lock.release()
    assert lock_holder(lock.path) is None


def test_a_dead_holder_whose_lock_goes_a_moment_later_is_waited_for(tmp_path: Path) -> None:
    """kill -9: the main thread is a zombie while other threads still hold the lock."""
    lock = Lock(tmp_path / "fnud.lock")
    assert lock.acquire()
    os.pwrite(lock.fd, f"{_dead_pid()}\n".encode(), 0)
    letting_go = threading.Timer(0.2, lock.release)  # the kernel's release, injected
    letting_go.start()
    try:
        assert lock_holder(lock.path) is None
    finally:
        letting_go.join()


def test_a_dead_holder_that_keeps_the_lock_is_named_after_the_wait(tmp_path: Path) -> None:
    lock = Lock(tmp_path / "fnud.lock")
    assert lock.acquire()
    dead = _dead_pid()
    os.pwrite(lock.fd, f"{dead}\n".encode(), 0)
    try:
        assert lock_holder(lock.path, dying_wait=0.05) == dead
    finally:
        lock.release()
