"""Everything the daemon's loop reacts to, as typed values.

Signal handlers, watchers, timers and the programs' exit/readiness watchers only put
one of these on the queue; the loop looks the handler up in a table keyed by type
(``loop.HANDLERS``), which is checked against ``ALL`` at import time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from supervisor.process.events import Exited, Ready, Retry


@dataclass(frozen=True)
class SignalEvent:
    signum: int


@dataclass(frozen=True)
class Heartbeat:
    """Put on the queue periodically; handling it proves the loop is not wedged."""


@dataclass(frozen=True)
class Invoke:
    """A command from a door that may not wait for it: a signal, a saved file, a touch
    file. The loop dispatches it to the command registry like any other door."""

    command: str
    args: Mapping[str, Any] = field(default_factory=dict)


Event = SignalEvent | Heartbeat | Invoke | Exited | Ready | Retry
ALL: tuple[type, ...] = (SignalEvent, Heartbeat, Invoke, Exited, Ready, Retry)
Enqueue = Callable[[Event], None]
