"""Everything the daemon's loop reacts to, as typed values.

Signal handlers, watchers, timers and the programs' exit/readiness watchers only put
one of these on the queue; the loop looks the handler up in a table keyed by type
(``daemon.HANDLERS``), which is checked against ``ALL`` at import time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class SignalEvent:
    signum: int


@dataclass(frozen=True)
class Heartbeat:
    """Put on the queue periodically; handling it proves the loop is not wedged."""


@dataclass(frozen=True)
class ReloadEvent:
    """An automatic reload (SIGHUP, a touch file, a saved file)."""

    reason: str
    nginx: bool = True
    app: bool = True
    trigger: str = ""  # sighup, save, touch, web (the status page's history shows it)


@dataclass(frozen=True)
class Exited:
    program: str
    pid: int
    returncode: int


@dataclass(frozen=True)
class Ready:
    program: str
    pid: int


@dataclass(frozen=True)
class Retry:
    program: str


Event = SignalEvent | Heartbeat | ReloadEvent | Exited | Ready | Retry
ALL: tuple[type, ...] = (SignalEvent, Heartbeat, ReloadEvent, Exited, Ready, Retry)
Enqueue = Callable[[Event], None]
