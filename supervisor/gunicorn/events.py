"""The events a generation's hooks write (hooks.py), read as they come: its master is
ready (and how many workers it wants, whether fnud can pause them), a worker loaded the
app, parked or took requests again, a worker exited."""

from __future__ import annotations

import contextlib
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supervisor.common.trust import owned_like_its_dir

READ_AT_ONCE = 1 << 20  # the rest, if ever, on the next read


@dataclass
class Events:
    path: Path
    offset: int = 0
    master: int = 0  # the master that said it is ready
    wanted: int = 0  # the workers it starts
    pause: str = ""  # "sync", "gthread": how its workers pause; "": they cannot
    ready: dict[int, int] = field(default_factory=dict)  # worker pid -> its age
    parked: set[int] = field(default_factory=set)
    exits: int = 0
    _partial: bytes = b""

    def reset(self) -> None:
        """A new master starts on an emptied file."""
        self.offset, self.master, self.wanted, self.pause, self.exits = 0, 0, 0, "", 0
        self.ready.clear()
        self.parked.clear()
        self._partial = b""

    def read(self) -> None:
        """Take in what was written since the last read."""
        try:  # never through a link, never a FIFO: the workers' user owns the directory
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return
        with open(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode) or not owned_like_its_dir(fd, self.path):
                return
            f.seek(self.offset)
            data = f.read(READ_AT_ONCE)
        self.offset += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                with contextlib.suppress(ValueError, TypeError, OverflowError):
                    self.apply(event)  # written where the app's user writes: anything

    def apply(self, event: dict[str, Any]) -> None:
        kind, pid = event.get("ev"), event.get("pid")
        if not isinstance(pid, int):
            return
        if kind == "master" and not self.master:  # the first: it came before any worker
            self.master, self.pause = pid, str(event.get("pause") or "")
            self.wanted = int(event.get("workers") or 0)
        elif kind == "ready" and event.get("ppid") == self.master and self.master:
            self.ready[pid] = int(event.get("age") or 0)
        elif kind == "parked":
            self.parked.add(pid)
        elif kind == "unparked":
            self.parked.discard(pid)
        elif kind == "exit":
            self.exits += 1
            worker = event.get("worker")
            if isinstance(worker, int):
                self.ready.pop(worker, None)
                self.parked.discard(worker)
