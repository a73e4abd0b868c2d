"""Linux inotify through ctypes: an fd that becomes readable when a watched file changes.

watchdog wraps the same calls, but behind an observer thread per watch that wakes on every
event; the log tails need only a file descriptor for the event loop (or select), so this
is the few lines of it they use.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct

IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000

_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name
_libc: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _check(result: int, what: str) -> int:
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")
    return result


def init() -> int:
    """A new non-blocking, close-on-exec inotify fd (OSError: no inotify here)."""
    try:
        lib = _lib()
        return _check(lib.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC), "inotify_init1")
    except AttributeError:  # not Linux, or a libc without it
        raise OSError(errno.ENOSYS, "inotify is not available") from None


def add_watch(fd: int, path: str, mask: int) -> int:
    """Watch ``path`` (its inode, as it is now) for ``mask``; the watch descriptor."""
    return _check(_lib().inotify_add_watch(fd, os.fsencode(path), mask), "inotify_add_watch")


def read_events(fd: int) -> list[tuple[int, int, str]]:
    """Every pending event as (wd, mask, name); [] when there is none."""
    events: list[tuple[int, int, str]] = []
    while True:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return events
        if not data:
            return events
        offset = 0
        while offset + _EVENT.size <= len(data):
            wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
            start = offset + _EVENT.size
            name = data[start:start + length].rstrip(b"\0").decode(errors="replace")
            events.append((wd, mask, name))
            offset = start + length
