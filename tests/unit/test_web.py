"""The status page without sockets (history, request rate, routing, token and origin
checks, fuzzed requests) and its server on a loopback port (bounds, answers that arrive)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from supervisor.appserver.port import WorkersUnknown
from supervisor.web import metrics, page
from supervisor.web.history import History, RequestRates
from supervisor.web.page import Hooks, Page, Request, WebApp, host_name
from testkit.fuzzing import examples, http_heads

TOKEN = "test-token-0123456789abcdef"


def _app(tmp_path: Path, token: str = "", loopback_only: bool = True) -> WebApp:
    async def status() -> dict[str, Any]:
        return {"daemon": {"pid": 1}, "programs": {}}

    hooks = Hooks(status=status, reload=lambda: (True, "queued"),
                  rollback=lambda: (False, "not available"), token=lambda: token)
    return WebApp(hooks, History.in_dir(tmp_path), RequestRates(), loopback_only=loopback_only)


def _get(app: WebApp, path: str, method: str = "GET", **headers: str) -> Any:
    request = Request(method, path, {k.lower().replace("_", "-"): v for k, v in headers.items()})
    return asyncio.run(app.handle(request))


def test_history_is_bounded_and_survives_a_new_instance(tmp_path: Path) -> None:
    history = History.in_dir(tmp_path)
    for number in range(60):
        history.record({"result": "ok", "message": f"reload {number}", "at": float(number)})
    assert len(history.entries) == 50
    assert (tmp_path / "history.json").stat().st_mode & 0o777 == 0o600
    again = History.in_dir(tmp_path)
    assert [e["message"] for e in again.newest_first()][:2] == ["reload 59", "reload 58"]
    assert len(again.entries) == 50
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("content", ["{not json", '{"a": 1}', "[1, 2, 3]"])
def test_a_damaged_history_file_starts_anew(tmp_path: Path, content: str) -> None:
    (tmp_path / "history.json").write_text(content)
    history = History.in_dir(tmp_path)
    assert history.newest_first() == []
    history.record({"result": "ok"})
    assert json.loads((tmp_path / "history.json").read_text()) == [{"result": "ok"}]


def test_request_rate_buckets_are_bounded_and_age_out() -> None:
    now = [1000.0]
    rates = RequestRates(window=60, bucket=10, clock=lambda: now[0])
    for second in range(0, 300):
        now[0] = 1000.0 + second
        rates.add(500 if second % 10 == 0 else 200)
    assert len(rates.buckets) <= 7
    data = rates.as_dict()
    assert all(start + 10 > now[0] - 60 for start, _, _ in data["buckets"])
    assert [total for _, total, _ in data["buckets"]][:-1] == [10] * (len(data["buckets"]) - 1)
    assert all(errors == 1 for _, _, errors in data["buckets"])


def test_csp_allows_exactly_the_inline_script_and_style(tmp_path: Path) -> None:
    page = Page.load()
    assert "'unsafe-inline'" not in page.csp and "frame-ancestors 'none'" in page.csp
    assert len(re.findall(r"'sha256-[A-Za-z0-9+/=]+'", page.csp)) == 2
    urls = set(re.findall(rb"https?://[^\"' ]+", page.html))
    assert urls == {b"http://www.w3.org/2000/svg"}  # a namespace name, nothing fetched: no CDN
    assert b"style=" not in page.html and b" on" + b"click=" not in page.html


def test_other_host_names_are_refused_on_loopback(tmp_path: Path) -> None:
    assert _get(_app(tmp_path), "/status.json", host="rebound.example:9300").status == 421
    assert _get(_app(tmp_path), "/status.json", host="localhost:8000").status == 200
    assert _get(_app(tmp_path, loopback_only=False), "/", host="fnud.example").status == 200
    assert host_name("[::1]:9300") == "[::1]" and host_name("127.0.0.1") == "127.0.0.1"


def test_actions_need_the_token_and_a_matching_origin(tmp_path: Path) -> None:
    auth = f"Bearer {TOKEN}"
    assert _get(_app(tmp_path), "/reload", "POST", authorization=auth).status == 403
    app = _app(tmp_path, token=TOKEN)
    assert _get(app, "/reload", "POST").status == 403
    assert _get(app, "/reload", "POST", authorization="Bearer nope").status == 403
    assert _get(app, "/reload", "GET", authorization=auth).status == 405
    assert _get(app, "/reload", "POST", authorization=auth, host="127.0.0.1:1",
                origin="http://evil.example").status == 403
    assert _get(app, "/reload", "POST", authorization=auth, host="127.0.0.1:1",
                origin="http://127.0.0.1:1").status == 202
    assert _get(app, "/rollback", "POST", authorization=auth).status == 409


# -- fuzzed requests ---------------------------------------------------------------------

STATUS_LINE = re.compile(rb"^HTTP/1\.1 ([0-9]{3}) [A-Za-z ]+\r\n")


async def _answer(app: WebApp, data: bytes, eof: bool = True) -> page.Response:
    """What the server answers to ``data`` (as WebServer does, without a socket)."""
    reader = asyncio.StreamReader(limit=page.MAX_HEAD)
    reader.feed_data(data)
    if eof:
        reader.feed_eof()
    try:
        request = await page.read_request(reader, "127.0.0.1:1")
    except page.BadRequest as exc:
        return page.json_response(exc.status, {"error": str(exc)})
    return await app.handle(request)


def _valid_http(response: page.Response, csp: str) -> int:
    raw = page.render(response, csp)
    head, _, body = raw.partition(b"\r\n\r\n")
    match = STATUS_LINE.match(head + b"\r\n")
    assert match, raw[:100]
    assert f"Content-Length: {len(body)}".encode() in head.split(b"\r\n")
    return int(match.group(1))


def _acting_app(tmp_path: Path) -> tuple[WebApp, list[str]]:
    acted: list[str] = []

    async def status() -> dict[str, Any]:
        return {"daemon": {"pid": 1}, "programs": {}}

    hooks = Hooks(
        status=status, token=lambda: TOKEN,
        reload=lambda: (acted.append("reload"), (True, "queued"))[1],
        rollback=lambda: (acted.append("rollback"), (False, "not available"))[1],
    )
    return WebApp(hooks, History.in_dir(tmp_path), RequestRates()), acted


_HEADS = http_heads(TOKEN, "127.0.0.1:9300", with_the_token=True)


@settings(max_examples=examples(400), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(head=_HEADS, body=st.binary(max_size=20), eof=st.booleans())
def test_any_request_gets_a_2xx_or_4xx_and_a_wrong_token_never_acts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, head: bytes, body: bytes, eof: bool
) -> None:
    monkeypatch.setattr(page, "READ_TIMEOUT", 0.02)  # the requests that never end
    app, acted = _acting_app(tmp_path)
    response = asyncio.run(_answer(app, head + body, eof))
    status = _valid_http(response, app.page.csp)
    assert 200 <= status < 300 or 400 <= status < 500, (status, response.body)
    if acted:
        assert status in (202, 409)
        assert f"Authorization: Bearer {TOKEN}\r\n".encode() in head
    event(f"{status}, {'acted' if acted else 'nothing done'}")


@pytest.mark.parametrize(("data", "status"), [
    (b"GET / HTTP/1.1\r\nHost: 127.0.0.1", 400),  # the client half-closed mid-head
    (b"POST /reload HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort", 400),
    (b"POST /reload HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
    (b"POST /reload HTTP/1.1\r\nContent-Length: 1_0\r\n\r\n0123456789", 400),
    (b"POST /reload HTTP/1.1\r\nContent-Length: +3\r\n\r\nabc", 400),
    (b"POST /reload HTTP/1.1\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n", 413),
])
def test_requests_cut_short_or_with_a_bad_length_get_an_answer(
    tmp_path: Path, data: bytes, status: int
) -> None:
    """A request that ended early got no answer at all (IncompleteReadError closed the
    connection); '-1' was "body too large"; int() took '1_0' and '+3'."""
    app, acted = _acting_app(tmp_path)
    assert asyncio.run(_answer(app, data)).status == status
    assert acted == []


def test_a_request_that_never_ends_gets_408(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It was closed without an answer; the body also had a read timeout of its own, so
    a slow client could hold a connection twice as long."""
    monkeypatch.setattr(page, "READ_TIMEOUT", 0.1)
    app, _ = _acting_app(tmp_path)
    for data in (b"GET / HTTP/1.1\r\n", b"POST /reload HTTP/1.1\r\nContent-Length: 5\r\n\r\nab"):
        response = asyncio.run(_answer(app, data, eof=False))
        assert (response.status, json.loads(response.body)) == (
            408, {"error": "no whole request within 0.1 s"}
        )


# -- the server on a loopback port ----------------------------------------------------------


def _exchange(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            sock.sendall(data)
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                answer += chunk
    return answer


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``condition`` in the loop until it holds; AssertionError after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def _serve_web(tmp_path: Path, body: Callable[[page.WebServer, int], Awaitable[None]]) -> None:
    async def run() -> None:
        app, _ = _acting_app(tmp_path)
        server = page.WebServer(app)
        await server.start("127.0.0.1", 0)
        assert server.server is not None
        try:
            await body(server, server.server.sockets[0].getsockname()[1])
        finally:
            await server.close()

    asyncio.run(run())


def test_clients_past_the_bound_are_told_429(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """They were closed without a word."""
    monkeypatch.setattr(page, "MAX_CLIENTS", 2)
    answers: list[bytes] = []

    async def body(server: page.WebServer, port: int) -> None:
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
        await _until(lambda: server.clients == 2)  # both wait for their heads
        answers.append(await asyncio.to_thread(_exchange, port, b""))
        for _, writer in held:
            writer.close()
        await _until(lambda: server.clients == 0)
        answers.append(await asyncio.to_thread(_exchange, port, b"GET / HTTP/1.1\r\n\r\n"))

    _serve_web(tmp_path, body)
    assert answers[0].startswith(b"HTTP/1.1 429 Too Many Requests\r\n")
    assert answers[1].startswith(b"HTTP/1.1 200 OK\r\n")


def _metrics_source() -> metrics.Source:
    async def workers() -> Any:
        raise WorkersUnknown("no stats socket in this test")

    return metrics.Source(programs=dict, reload_counts=dict, probe_failures=lambda: 0,
                          generation=lambda: (1, False), workers=workers)


def test_metrics_scrapers_past_the_bound_are_told_429(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each scraper that never sent its request held a task and an fd for good."""
    monkeypatch.setattr(metrics, "MAX_CLIENTS", 2)
    answers: list[bytes] = []

    async def run() -> None:
        server = metrics.MetricsServer(_metrics_source())
        await server.start("127.0.0.1", 0)
        assert server.server is not None
        port = server.server.sockets[0].getsockname()[1]
        try:
            held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
            await _until(lambda: server.clients == 2)
            answers.append(await asyncio.to_thread(_exchange, port, b""))
            for _, writer in held:
                writer.close()
            await _until(lambda: server.clients == 0)
            answers.append(await asyncio.to_thread(_exchange, port, b"GET / HTTP/1.1\r\n\r\n"))
        finally:
            await server.close()

    asyncio.run(run())
    assert answers[0].startswith(b"HTTP/1.1 429 Too Many Requests\r\n")
    assert answers[1].startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"fnud_reload_duration_seconds" in answers[1]
