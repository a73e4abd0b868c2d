"""A bounded concurrent HTTP client for 127.0.0.1 (or an address inside a network namespace
the fleet test bed made): counts every request and failure.

Each request opens its own connection (no keep-alive), so a failure is a real
failure of the stack, not a client-side connection reuse race.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Record:
    """One request: when it began and ended (monotonic), its status (0: no answer) and
    its body, or the error's name."""

    began: float
    ended: float
    status: int
    body: bytes
    error: str = ""

    @property
    def failed(self) -> bool:
        return bool(self.error) or self.status != 200


@dataclass
class LoadResult:
    requests: int = 0
    failures: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    bodies: Counter[bytes] = field(default_factory=Counter)
    records: list[Record] = field(default_factory=list)  # with record=True

    def summary(self) -> str:
        return (
            f"{self.requests} requests, {self.failures} failed, statuses {dict(self.statuses)}, "
            f"errors {dict(self.errors)}"
        )


class Load:
    """Run ``concurrency`` client threads until stopped (or ``max_seconds`` pass)."""

    def __init__(
        self, url: str, concurrency: int = 4, max_seconds: float = 120.0, timeout: float = 30.0,
        namespace_hosts: tuple[str, ...] = (),  # addresses inside the fleet test bed's netns
        record: bool = False,  # keep every request (the soak ties failures to its steps)
    ) -> None:
        parts = urlsplit(url)
        allowed = ("127.0.0.1", "localhost", *namespace_hosts)
        assert parts.hostname in allowed, "load is for loopback (or the test bed's namespaces)"
        self.host = parts.hostname
        self.port = parts.port or 80
        self.path = parts.path or "/"
        self.concurrency = concurrency
        self.max_seconds = max_seconds
        self.timeout = timeout
        self.record = record
        self.result = LoadResult()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _one(self) -> None:
        began = time.monotonic()
        status = 0
        body = b""
        error = ""
        try:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                conn.request("GET", self.path, headers={"Connection": "close"})
                response = conn.getresponse()
                status = response.status
                body = response.read()
            finally:
                conn.close()
        except (OSError, http.client.HTTPException) as exc:
            error = type(exc).__name__
        ended = time.monotonic()
        elapsed = ended - began
        with self._lock:
            result = self.result
            if self.record:
                result.records.append(Record(began, ended, status, body, error))
            result.requests += 1
            result.latencies.append(elapsed)
            if error:
                result.failures += 1
                result.errors[error] += 1
            else:
                result.statuses[status] += 1
                if status != 200:
                    result.failures += 1
                else:
                    result.bodies[body] += 1

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            self._one()

    def __enter__(self) -> Load:
        for _ in range(self.concurrency):
            thread = threading.Thread(target=self._run, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> LoadResult:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        return self.result

    def wait_requests(self, count: int, timeout: float = 30.0) -> None:
        """Block until at least ``count`` more requests have completed."""
        target = self.result.requests + count
        deadline = time.monotonic() + timeout
        while self.result.requests < target:
            if time.monotonic() > deadline:
                raise AssertionError(f"load made no progress: {self.result.summary()}")
            time.sleep(0.01)
