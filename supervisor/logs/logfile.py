"""The detached daemon's own log file, reopenable after rotation.

The daemon opens the file itself (rather than inheriting it from ``fnud start``) and
puts it on its stdout and stderr, so that a reopen swaps both at once, tracebacks
included.
"""

from __future__ import annotations

import os
from pathlib import Path


class DaemonLog:
    def __init__(self, path: Path) -> None:
        self.path = path

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        try:
            os.dup2(fd, 1)
            os.dup2(fd, 2)
        finally:
            os.close(fd)

    reopen = open
