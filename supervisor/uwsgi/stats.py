"""uWSGI's stats socket (JSON: workers, their state, respawns), its request log lines,
and a chain reload's progress read from them."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor.appserver.workers import Stats, Worker

_REQUEST_RE = re.compile(r"^\[pid: (\d+)\|.*\(HTTP/[\d.]+ (\d{3})\)")


def request_status(line: str) -> tuple[int, int] | None:
    """(worker pid, HTTP status) of one line of uWSGI's default request log."""
    match = _REQUEST_RE.match(line)
    return (int(match.group(1)), int(match.group(2))) if match else None


def parse_stats(data: Mapping[str, Any]) -> Stats:
    workers = tuple(
        Worker(
            id=int(w.get("id", 0)),
            pid=int(w.get("pid", 0)),
            status=str(w.get("status", "")),
            accepting=bool(w.get("accepting", 0)),
            apps=len(w.get("apps", []) or []),
            requests=int(w.get("requests", 0)),
            exceptions=int(w.get("exceptions", 0)),
            rss=int(w.get("rss", 0)),
            respawns=int(w.get("respawn_count", 0)),
        )
        for w in data.get("workers", [])
    )
    return Stats(int(data.get("pid", 0)), int(data.get("listen_queue", 0)), workers)


async def read_stats(path: Path, timeout: float = 2.0) -> Stats:
    """Connect to the stats unix socket; uWSGI writes its JSON and closes."""

    async def _read() -> bytes:
        reader, writer = await asyncio.open_unix_connection(str(path))
        try:
            return await reader.read()
        finally:
            writer.close()

    raw = await asyncio.wait_for(_read(), timeout)
    return parse_stats(json.loads(raw.decode("utf-8", errors="replace")))


@dataclass
class ChainProgress:
    """Tracks a chain reload: done when every worker PID is new, accepting, app loaded."""

    old_pids: frozenset[int]
    reported: set[int]

    @classmethod
    def begin(cls, stats: Stats) -> ChainProgress:
        return cls(frozenset(w.pid for w in stats.live_workers), set())

    def newly_replaced(self, stats: Stats) -> list[Worker]:
        fresh = [
            w
            for w in stats.live_workers
            if w.pid not in self.old_pids and w.accepting and w.apps > 0
            and w.id not in self.reported
        ]
        self.reported.update(w.id for w in fresh)
        return fresh

    def done(self, stats: Stats) -> bool:
        live = stats.live_workers
        return bool(live) and all(
            w.pid not in self.old_pids and w.accepting and w.apps > 0 for w in live
        )

    def stuck(self, stats: Stats) -> list[Worker]:
        return [w for w in stats.live_workers if w.pid in self.old_pids or not w.accepting]
