"""A running stack's daemon seen from outside, for tests that throw bad input at it:
after each batch it must be the same process, answer ping and status, hold no more
open fds than before (/proc/PID/fd), have run no reload nobody asked for, and the site
must still serve."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any

from supervisor.control import wire
from testkit.stackdir import StackDir


class WatchedDaemon:
    """The daemon of a running stack, seen from outside."""

    def __init__(self, stack: StackDir) -> None:
        self.stack = stack
        self.sock = str(stack.run / "fnud.sock")
        self.pid = int(self.call("ping")["pid"])
        self.fd_log: list[tuple[str, int, int]] = []

    def call(self, cmd: str, args: dict[str, Any] | None = None, timeout: float = 30) -> Any:
        return wire.call(self.stack.run / "fnud.sock", cmd, args, timeout=timeout)

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def quiet_fds(self) -> int:
        """The fewest fds over half a second (probes and stats reads come and go)."""
        samples = []
        for _ in range(25):
            samples.append(self.fds())
            time.sleep(0.02)
        return min(samples)

    def reloads(self) -> Any:
        status = self.call("status")
        return status["reloads"], status["generation"]["number"]

    @contextlib.contextmanager
    def batch(self, name: str, reloads: bool = False) -> Iterator[None]:
        """``reloads``: the batch reloads on purpose (no check that none ran)."""
        before, before_reloads = self.quiet_fds(), self.reloads()
        yield
        deadline = time.monotonic() + 30
        while (now := self.fds()) > before and time.monotonic() < deadline:
            time.sleep(0.02)
        self.fd_log.append((name, before, now))
        print(f"\n{name}: daemon fds {before} before, {now} after")
        assert now <= before, f"{name}: the daemon holds {now - before} more fds"
        assert self.call("ping")["pid"] == self.pid
        assert reloads or self.reloads() == before_reloads, f"{name}: a reload ran"
        assert self.stack.serving()
