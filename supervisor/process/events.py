"""What a program reports to the daemon's queue: it exited, it is ready, retry it now.

A program never decides what follows; it puts one of these on the queue and the
daemon's loop moves its state machine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


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


ProcessEvent = Exited | Ready | Retry
Enqueue = Callable[[ProcessEvent], None]
