"""The status page of a real daemon ([web] listen on a free loopback port, with a token)
under fuzzed requests and clients that hold connections: every answer is HTTP with a 2xx
or 4xx code, within the read timeout; no wrong token acts (the reload history stays as
it was); the daemon's fds come back; GET / and /status.json still work."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supervisor.web import page
from testkit.fuzzing import examples, http_heads
from testkit.stackdir import StackDir, cleaned_up, free_port, make_stack_dir
from testkit.watched import WatchedDaemon

TOKEN = "fuzz-token-0123456789abcdef"
STATUS_LINE = re.compile(rb"^HTTP/1\.1 ([0-9]{3}) [A-Za-z ]+$")


class Web:
    def __init__(self, stack: StackDir, port: int) -> None:
        self.daemon = WatchedDaemon(stack)
        self.port = port

    def get(self, path: str) -> tuple[int, bytes]:
        url = f"http://127.0.0.1:{self.port}{path}"
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()

    def history(self) -> Any:
        return json.loads(self.get("/history.json")[1])["reloads"]

    @contextlib.contextmanager
    def batch(self, name: str) -> Iterator[None]:
        history = self.history()
        with self.daemon.batch(name):
            yield
        assert self.history() == history, f"{name}: a request acted"
        status, body = self.get("/")
        assert status == 200 and b"<title>fnud</title>" in body
        status, body = self.get("/status.json")
        assert status == 200 and json.loads(body)["daemon"]["pid"] == self.daemon.pid


@pytest.fixture(scope="module")
def web() -> Iterator[Web]:
    port = free_port()
    stack = make_stack_dir(
        extra_toml=f'\n[web]\nlisten = "127.0.0.1:{port}"\ntoken = "{TOKEN}"\n'
    )
    with cleaned_up([stack]):
        stack.start()
        yield Web(stack, port)


def _exchange(port: int, data: bytes, half_close: bool = True) -> tuple[bytes, float]:
    """Send ``data`` (then half-close), read the answer until the server closes."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=page.READ_TIMEOUT + 10) as sock:
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                answer += chunk
    return answer, time.monotonic() - started


def _status_of(answer: bytes) -> int:
    """The code of a well-formed answer (its Content-Length is its body's length)."""
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    match = STATUS_LINE.match(lines[0])
    assert match, answer[:200]
    assert f"Content-Length: {len(body)}".encode() in lines[1:], answer[:500]
    code = int(match.group(1))
    assert 200 <= code < 300 or 400 <= code < 500, answer[:500]
    return code


def test_fuzzed_requests(web: Web) -> None:
    @settings(max_examples=examples(60), deadline=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(head=http_heads(TOKEN, f"127.0.0.1:{web.port}", with_the_token=False),
           body=st.binary(max_size=20))
    def one_request(head: bytes, body: bytes) -> None:
        answer, took = _exchange(web.port, head + body)
        _status_of(answer)
        assert took < page.READ_TIMEOUT + 2

    with web.batch("fuzzed requests"):
        one_request()


def test_wrong_tokens_and_lies(web: Web) -> None:
    host = f"127.0.0.1:{web.port}"
    cases = {
        f"POST /reload HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN[:-1]}\r\n\r\n": 403,
        "POST /rollback HTTP/1.1\r\nAuthorization: Bearer \r\n\r\n": 403,
        f"POST /reload HTTP/1.1\r\nAuthorization: Bearer {'x' * 15000}\r\n\r\n": 403,
        f"POST /reload HTTP/1.1\r\nAuthorization: Bearer {'x' * 20000}\r\n\r\n": 431,
        f"POST /reload HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Content-Length: 10\r\n\r\nshort": 400,
        f"POST /reload HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Content-Length: -1\r\n\r\n": 400,
        f"POST /reload HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n": 400,
        f"POST /reload HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\nHost: {host}\r\n"
        "Origin: http://evil.example\r\n\r\n": 403,
        f"POST /reload HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Host: rebound.example\r\n\r\n": 421,
        "GET /status.json?%00%ff HTTP/1.1\r\n\r\n": 200,
        "GET /%73tatus.json HTTP/1.1\r\n\r\n": 404,
    }
    with web.batch("wrong tokens and lies"):
        for request, code in cases.items():
            answer, _ = _exchange(web.port, request.encode("latin-1"))
            assert _status_of(answer) == code, request[:80]


def _hold(port: int, data: bytes, out: list[tuple[bytes, float]]) -> threading.Thread:
    thread = threading.Thread(target=lambda: out.append(_exchange(port, data, False)))
    thread.start()
    return thread


def test_forty_clients_at_once_that_never_finish_their_request(web: Web) -> None:
    """Past MAX_CLIENTS: 429 at once; the rest get 408 after READ_TIMEOUT, not later."""
    answers: list[tuple[bytes, float]] = []
    with web.batch("40 clients at once"):
        threads = [_hold(web.port, b"", answers) for _ in range(20)]
        threads += [_hold(web.port, b"GET / HTTP/1.1\r\nHost: 127", answers) for _ in range(10)]
        threads += [_hold(web.port, b"POST /reload HTTP/1.1\r\nContent-Length: 9\r\n\r\nab",
                          answers) for _ in range(10)]
        time.sleep(1)
        print(f"\nwhile held: daemon fds {web.daemon.fds()}")
        for thread in threads:
            thread.join(page.READ_TIMEOUT + 20)
    codes = sorted(_status_of(answer) for answer, _ in answers)
    print(f"answers: {codes.count(408)} x 408, {codes.count(429)} x 429, in at most "
          f"{max(took for _, took in answers):.1f} s")
    assert len(codes) == 40 and set(codes) == {408, 429}
    assert codes.count(429) >= 40 - page.MAX_CLIENTS
    assert max(took for _, took in answers) < page.READ_TIMEOUT + 3
