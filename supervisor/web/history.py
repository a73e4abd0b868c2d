"""What the status page shows beyond ``fnud status``: the last reloads and the request rate.

``History`` keeps the last reloads (``ReloadResult.as_dict()`` plus its trigger) in a small
JSON file in the runtime dir, rewritten atomically after each reload, so it survives a
daemon restart. ``RequestRates`` counts the serving generation's answers (read from the
app server's log, which fnud already follows) in 10-second buckets over the last 15
minutes, in memory.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from supervisor.logs import logsetup

HISTORY_FILE = "history.json"
KEEP = 50
MAX_FILE_BYTES = 1 << 20  # a history file larger than this is not ours: ignore it


class History:
    """The last ``keep`` reloads, oldest first, mirrored to ``path``."""

    def __init__(self, path: Path, keep: int = KEEP) -> None:
        self.path = path
        self.keep = keep
        self.log = logsetup.get("history")
        self.entries: collections.deque[dict[str, Any]] = collections.deque(
            self._load(), maxlen=keep
        )

    @classmethod
    def in_dir(cls, runtime_dir: Path) -> History:
        return cls(runtime_dir / HISTORY_FILE)

    def _load(self) -> list[dict[str, Any]]:
        try:
            if self.path.stat().st_size > MAX_FILE_BYTES:
                raise ValueError("too large")
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(data, list):
                raise ValueError("not a list")
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:  # JSONDecodeError is a ValueError
            self.log.warning("reload history unreadable: starting anew", path=str(self.path),
                             error=str(exc))
            return []
        return [entry for entry in data if isinstance(entry, dict)][-self.keep:]

    def record(self, entry: Mapping[str, Any]) -> None:
        """Append one reload and rewrite the file (write, then rename: never half a file)."""
        self.entries.append(dict(entry))
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(list(self.entries), out)
            os.replace(tmp, self.path)
        except OSError as exc:  # the page still has it in memory
            self.log.warning("cannot write reload history", path=str(self.path), error=str(exc))
            with contextlib.suppress(OSError):
                tmp.unlink()

    def newest_first(self) -> list[dict[str, Any]]:
        return list(reversed(self.entries))


class RequestRates:
    """Requests and 5xx answers per ``bucket`` seconds over the last ``window`` seconds."""

    def __init__(
        self, window: float = 900.0, bucket: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.window = window
        self.bucket = bucket
        self.clock = clock
        # [bucket start, requests, 5xx]; only buckets that saw a request, so bounded by
        # window / bucket whatever the traffic
        self.buckets: collections.deque[list[float]] = collections.deque(
            maxlen=int(window // bucket) + 1
        )

    def add(self, status: int) -> None:
        """One answer of the serving generation (every answer passes here: be cheap)."""
        start = self.clock() // self.bucket * self.bucket
        if not self.buckets or self.buckets[-1][0] != start:
            self.buckets.append([start, 0, 0])
        current = self.buckets[-1]
        current[1] += 1
        if status >= 500:
            current[2] += 1

    def as_dict(self) -> dict[str, Any]:
        now = self.clock()
        oldest = now - self.window
        return {
            "now": now,
            "bucket_seconds": self.bucket,
            "window_seconds": self.window,
            "buckets": [
                [start, int(total), int(errors)]
                for start, total, errors in self.buckets
                if start + self.bucket > oldest
            ],
        }
