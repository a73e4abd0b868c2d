"""fnud's own log output, which never raises: a full disk (or a closed pipe) loses lines,
counts them, and says so once writing works again.

structlog prints each event through ``write``; a line goes to the file descriptor in one
``os.write`` when its newline arrives (no buffer that could grow while the disk is full).
"""

from __future__ import annotations

import os
import time


class Sink:
    def __init__(self, fd: int = 2) -> None:
        self.fd = fd
        self.partial = ""
        self.failing = ""  # why writes fail now ('' while they work)
        self.since = 0.0  # wall clock of the first failed write
        self.lost = 0  # lines lost since then

    def isatty(self) -> bool:
        return os.isatty(self.fd)

    def fileno(self) -> int:
        return self.fd

    def write(self, text: str) -> int:
        self.partial += text
        while "\n" in self.partial:
            line, _, self.partial = self.partial.partition("\n")
            self._line(line + "\n")
        return len(text)

    def flush(self) -> None:
        return None  # every complete line is written already

    def _line(self, line: str) -> None:
        if self.failing and not self._put(self._resumed()):
            self.lost += 1
            return
        if not self._put(line):
            self.lost += 1

    def _resumed(self) -> str:
        when = time.strftime("%H:%M:%S", time.localtime(self.since))
        return (f"log writes resumed: {self.lost} lines lost since {when} "
                f"({self.failing})\n")

    def _put(self, line: str) -> bool:
        data = line.encode(errors="backslashreplace")  # a lone surrogate too
        try:
            while data:
                data = data[os.write(self.fd, data):]
        except OSError as exc:
            if not self.failing:
                self.failing, self.since, self.lost = exc.strerror or str(exc), time.time(), 0
            return False
        if self.failing and line.startswith("log writes resumed:"):
            self.failing = ""
        return True
