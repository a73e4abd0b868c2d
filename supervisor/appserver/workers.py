"""What an app server tells about its workers: the facts status, the health probe, the
metrics and a generation's readiness and settle are decided from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Worker:
    id: int
    pid: int
    status: str
    accepting: bool
    apps: int
    requests: int
    exceptions: int
    rss: int
    respawns: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "pid": self.pid,
            "status": self.status,
            "accepting": self.accepting,
            "apps": self.apps,
            "requests": self.requests,
            "exceptions": self.exceptions,
        }


@dataclass(frozen=True)
class Stats:
    master_pid: int
    listen_queue: int
    workers: tuple[Worker, ...]
    exits: int = 0  # workers that died since the master started, counted apart from them

    @property
    def respawns(self) -> int:
        """Workers replaced since the master started (a crash loop shows here)."""
        return self.exits + sum(w.respawns for w in self.workers)

    @property
    def live_workers(self) -> tuple[Worker, ...]:
        return tuple(w for w in self.workers if w.pid > 0)

    @property
    def serving(self) -> bool:
        """At least one worker accepts with an app loaded."""
        return any(w.accepting and w.apps > 0 for w in self.live_workers)

    @property
    def all_ready(self) -> bool:
        live = self.live_workers
        return bool(live) and all(w.accepting and w.apps > 0 for w in live)
