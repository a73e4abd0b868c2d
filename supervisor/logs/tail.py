"""Follow a program's log file: children write to files, never to a pipe to fnud.

With a pipe, a killed daemon would leave nginx and uWSGI writing into a broken pipe;
with an O_APPEND file they keep running, and a new daemon can pick the file up again.
The tail keeps its file descriptor, so it follows the inode the children write to
even when logrotate renames the file; truncation (copytruncate) starts it over.

Between reads the follower sleeps on inotify (``changed`` in the daemon's loop, ``wait``
for `fnud logs -f`): a watch on the file's inode (it grew, or was truncated) and one on
its directory for the file's name only (a new file took the name: rotation). An idle log
wakes nobody; a busy one wakes its reader at most once per ``settle`` seconds. Without
inotify (no more watches allowed, say) it polls every ``FALLBACK_POLL`` seconds.
"""

from __future__ import annotations

import contextlib
import os
import select
from pathlib import Path
from typing import TYPE_CHECKING

from supervisor.common import inotify

if TYPE_CHECKING:  # `fnud logs -f` uses the blocking half: no asyncio there
    import asyncio

FALLBACK_POLL = 1.0
_FILE_EVENTS = inotify.IN_MODIFY | inotify.IN_ATTRIB | inotify.IN_DELETE_SELF
_DIR_EVENTS = inotify.IN_CREATE | inotify.IN_MOVED_TO | inotify.IN_ONLYDIR


class Tail:
    def __init__(self, path: Path, position: int) -> None:
        self.path = path
        self.position = position
        self.partial = b""
        self.fd = -1
        self.notify_fd = -1  # -2: inotify unavailable, poll instead
        self.file_wd = -1
        self.dir_wd = -1
        self.closed = False
        self._waiting: tuple[asyncio.AbstractEventLoop, int, asyncio.Future[None]] | None = None

    def read_lines(self, max_bytes: int = 1 << 20) -> list[str]:
        """Complete lines written since the last call."""
        if not self._open():
            return []
        size = os.fstat(self.fd).st_size
        if size < self.position:  # truncated under us (copytruncate)
            self.position, self.partial = 0, b""
        if size == self.position:
            return []
        data = os.pread(self.fd, min(size - self.position, max_bytes), self.position)
        self.position += len(data)
        chunks = (self.partial + data).split(b"\n")
        self.partial = chunks.pop()
        if len(self.partial) > 65536:  # a runaway line without a newline
            chunks.append(self.partial)
            self.partial = b""
        return [chunk.decode(errors="replace").rstrip("\r") for chunk in chunks]

    def _open(self) -> bool:
        if self.fd < 0:
            try:
                self.fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                return False
        return True

    def take_over(self, previous: Tail) -> None:
        """Go on from exactly where ``previous`` (a tail on the same file) has read: at a
        switch of generations sharing one log, the new one echoes from there on, so no
        line is lost or echoed twice."""
        if not self._open() or previous.fd < 0:
            return
        mine, theirs = os.fstat(self.fd), os.fstat(previous.fd)
        if (mine.st_ino, mine.st_dev) == (theirs.st_ino, theirs.st_dev):
            self.position, self.partial = previous.position, previous.partial

    def rotated(self) -> bool:
        """The path now names another file than the one we follow (it was moved away
        and a new one created)."""
        if self.fd < 0:
            return False
        try:
            current = os.stat(self.path)
        except OSError:
            return False
        mine = os.fstat(self.fd)
        return (current.st_ino, current.st_dev) != (mine.st_ino, mine.st_dev)

    def close(self) -> None:
        self.closed = True
        self._unwait()  # never close an fd the event loop still watches
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.notify_fd >= 0:
            os.close(self.notify_fd)
            self.notify_fd = -1

    # -- sleeping until there is something to read --------------------------------------

    def _watch(self) -> int:
        """The inotify fd with both watches in place (-2 when there is no inotify, -1
        once closed)."""
        if self.closed:
            return -1
        if self.notify_fd == -1:
            try:
                self.notify_fd = inotify.init()
                self.dir_wd = inotify.add_watch(self.notify_fd, str(self.path.parent),
                                                _DIR_EVENTS)
            except OSError:
                if self.notify_fd >= 0:
                    os.close(self.notify_fd)
                self.notify_fd = -2
        if self.notify_fd >= 0 and self.file_wd < 0:
            with contextlib.suppress(OSError):  # not there yet: the dir watch sees it come
                self.file_wd = inotify.add_watch(self.notify_fd, str(self.path), _FILE_EVENTS)
        return self.notify_fd

    def _relevant(self) -> bool:
        """Take the pending events in; True if one concerns our file."""
        found = False
        for wd, mask, name in inotify.read_events(self.notify_fd):
            if wd == self.file_wd:
                found = True
                if mask & (inotify.IN_IGNORED | inotify.IN_DELETE_SELF):
                    self.file_wd = -1  # that inode is gone: watch whatever has the name
            elif wd == self.dir_wd and name == self.path.name:
                found = True
                self.file_wd = -1  # a new file has the name: watch it from now on
        return found

    async def changed(self, settle: float = 0.1) -> None:
        """Return once the file may have new lines or was replaced, or the tail was
        closed (event loop)."""
        import asyncio

        fd = self._watch()
        if fd == -2:
            await asyncio.sleep(FALLBACK_POLL)
            return
        loop = asyncio.get_running_loop()
        while fd >= 0 and self.notify_fd == fd:
            ready = loop.create_future()
            self._waiting = (loop, fd, ready)
            loop.add_reader(fd, _wake, ready)
            try:
                await ready
            finally:
                self._unwait()
            if self.notify_fd != fd or self._relevant():
                break
        if fd < 0 or self.notify_fd != fd:
            return  # closed meanwhile
        await asyncio.sleep(settle)  # let a burst of writes become one read
        if self.notify_fd == fd:
            self._relevant()
            self._watch()

    def _unwait(self) -> None:
        if self._waiting is not None:
            loop, fd, ready = self._waiting
            self._waiting = None
            loop.remove_reader(fd)
            _wake(ready)

    def wait(self, timeout: float) -> None:
        """Block until the file may have new lines or was replaced, at most ``timeout``."""
        fd = self._watch()
        if fd == -1:
            return
        if fd < 0:
            select.select([], [], [], min(timeout, FALLBACK_POLL))
            return
        if select.select([fd], [], [], timeout)[0]:
            self._relevant()
            self._watch()


def _wake(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)


def end_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
