"""A bounded, paced HTTP client for 127.0.0.1 that keeps every answer on a timeline.

wrk counts failures but cannot say *when* they happened or *what* a response said; the
save and fault sections need both (which answers still carry the old greeting, when the
last failed request of a fault window ended). Each request opens its own connection
(``Connection: close``), so a failure is the stack's, not a keep-alive race in the
client. Threads stop on ``stop()`` or after ``max_seconds``, whichever comes first.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Answer:
    began: float  # time.monotonic() when the request started
    ended: float
    status: int  # 0: no HTTP answer (see ``error``)
    body: bytes  # first bytes of a 200's body
    error: str = ""  # exception name for a socket-level failure

    @property
    def ok(self) -> bool:
        return self.status == 200 and not self.error

    @property
    def kind(self) -> str:
        return self.error or f"HTTP {self.status}"


def failures(answers: Iterable[Answer]) -> list[Answer]:
    return [a for a in answers if not a.ok]


def describe_failures(answers: Sequence[Answer]) -> str:
    """'0', or '7 (HTTP 502 x5, ConnectionRefusedError x2)'."""
    failed = failures(answers)
    if not failed:
        return "0"
    kinds = Counter(a.kind for a in failed)
    return f"{len(failed)} (" + ", ".join(f"{k} x{n}" for k, n in kinds.most_common()) + ")"


class Client:
    """``clients`` threads, each: GET, wait ``pause`` seconds, repeat."""

    def __init__(
        self, url: str, clients: int = 4, pause: float = 0.02, max_seconds: float = 120.0,
        timeout: float = 10.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.hostname != "127.0.0.1":
            raise ValueError(f"the bench loads 127.0.0.1 only, not {url}")
        self.port = parts.port or 80
        self.path = parts.path or "/"
        self.clients = clients
        self.pause = pause
        self.max_seconds = max_seconds
        self.timeout = timeout
        self.answers: list[Answer] = []  # list.append is atomic: no lock needed
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def describe(self) -> str:
        return (
            f"{self.clients} client threads, each GET {self.path} (new connection per "
            f"request) then {self.pause * 1000:g} ms pause"
        )

    def get(self) -> Answer:
        """One GET on a new connection."""
        began = time.monotonic()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                conn.request("GET", self.path, headers={"Connection": "close"})
                response = conn.getresponse()
                body = response.read()
                status = response.status
            finally:
                conn.close()
        except (OSError, http.client.HTTPException) as exc:
            return Answer(began, time.monotonic(), 0, b"", type(exc).__name__)
        return Answer(began, time.monotonic(), status, body[:200] if status == 200 else b"")

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            self.answers.append(self.get())
            if self.pause:
                self._stop.wait(self.pause)

    def start(self) -> Client:
        for i in range(self.clients):
            thread = threading.Thread(target=self._run, name=f"bench-client-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> list[Answer]:
        """Stop every thread (a request in flight ends within ``timeout``)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)
        return sorted(self.answers, key=lambda a: a.began)

    def wait_answers(self, count: int, timeout: float = 30.0) -> None:
        """Block until ``count`` more answers (any kind) have come in."""
        target = len(self.answers) + count
        deadline = time.monotonic() + timeout
        while len(self.answers) < target and time.monotonic() < deadline:
            time.sleep(0.01)

    def __enter__(self) -> Client:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
