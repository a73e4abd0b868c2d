"""uWSGI's stats socket (JSON: workers, their state, respawns), its request log lines,
and a chain reload's progress read from them."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor.appserver.workers import Stats, Worker
from supervisor.common.trust import open_path, owned_like_its_dir

MAX_STATS = 8 << 20  # uWSGI's JSON for hundreds of workers is well below this
_REQUEST_RE = re.compile(r"^\[pid: (\d+)\|.*\(HTTP/[\d.]+ (\d{3})\)")


def request_status(line: str) -> tuple[int, int] | None:
    """(worker pid, HTTP status) of one line of uWSGI's default request log."""
    match = _REQUEST_RE.match(line)
    return (int(match.group(1)), int(match.group(2))) if match else None


def parse_stats(data: Any) -> Stats:
    """Stats from the stats server's JSON (ValueError when it is not what uWSGI writes:
    the stats socket lives where the app's user writes)."""
    try:
        workers = tuple(_worker(w) for w in data.get("workers", []))
        return Stats(int(data.get("pid", 0)), int(data.get("listen_queue", 0)), workers)
    except (AttributeError, TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"not uWSGI's stats: {exc}") from None


def _worker(w: Mapping[str, Any]) -> Worker:
    return Worker(
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


async def read_stats(path: Path, timeout: float = 2.0, max_bytes: int = MAX_STATS) -> Stats:
    """Connect to the stats unix socket; uWSGI writes its JSON and closes.

    The socket is reached without following a link, must be a socket owned by its
    directory's owner (the master's user), and so must its peer be; the answer is
    size-capped. OSError or ValueError otherwise."""

    async def _read() -> bytes:
        fd = open_path(path, stat.S_IFSOCK)
        try:
            if not owned_like_its_dir(fd, path):
                raise OSError(f"{path}: not the master's socket")
            reader, writer = await asyncio.open_unix_connection(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        try:
            _check_peer(writer.get_extra_info("socket"), path)
            chunks: list[bytes] = []
            size = 0
            while chunk := await reader.read(1 << 16):
                size += len(chunk)
                if size > max_bytes:
                    raise ValueError(f"{path}: stats larger than {max_bytes} bytes")
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            writer.close()

    raw = await asyncio.wait_for(_read(), timeout)
    try:
        data = json.loads(raw.decode("utf-8", errors="replace"))
    except RecursionError:
        raise ValueError(f"{path}: stats nested too deep") from None
    return parse_stats(data)


def _check_peer(sock: socket.socket | None, path: Path) -> None:
    """The process listening is the socket file's owner (uWSGI's master)."""
    if sock is None:
        return
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    peer_uid = int.from_bytes(creds[4:8], "little")
    if peer_uid != os.stat(path.parent).st_uid:
        raise OSError(f"{path}: answered by uid {peer_uid}, not the master's user")


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
