"""Follow a program's log file: children write to files, never to a pipe to fnud.

With a pipe, a killed daemon would leave nginx and uWSGI writing into a broken pipe;
with an O_APPEND file they keep running, and a new daemon can pick the file up again.
The tail keeps its file descriptor, so it follows the inode the children write to
even when logrotate renames the file; truncation (copytruncate) starts it over.
"""

from __future__ import annotations

import os
from pathlib import Path


class Tail:
    def __init__(self, path: Path, position: int) -> None:
        self.path = path
        self.position = position
        self.partial = b""
        self.fd = -1

    def read_lines(self, max_bytes: int = 1 << 20) -> list[str]:
        """Complete lines written since the last call."""
        if self.fd < 0:
            try:
                self.fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
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
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def end_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
