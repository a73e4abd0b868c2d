"""The status page ([web]): unit tests of its parts, then HTTP against a real stack."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from supervisor.config.parse import ConfigError, parse_config
from supervisor.uwsgi.driver import request_status
from supervisor.web.history import History, RequestRates
from supervisor.web.page import Hooks, Page, Request, WebApp, host_name
from tests.conftest import (
    WATCH_TOML,
    StackDir,
    assert_no_leftovers,
    free_port,
    make_stack_dir,
    wait_for,
)

TOKEN = "test-token-0123456789abcdef"
BOOM_ROUTE = '''

@app.route("/boom")
def boom() -> str:
    raise RuntimeError("a 5xx for the request chart")
'''

# -- config ---------------------------------------------------------------------------


def _config(text: str) -> Any:
    return parse_config(text, Path("/etc/fnud/fnud.toml"))


def test_web_is_off_by_default() -> None:
    web = _config("").web
    assert web.listen == "" and web.token == ""


@pytest.mark.parametrize("listen", ["127.0.0.1:9300", "localhost:9300", "[::1]:9300",
                                    "127.0.0.2:80"])
def test_web_listens_on_loopback_without_a_token(listen: str) -> None:
    assert _config(f'[web]\nlisten = "{listen}"\n').web.listen == listen


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[web]\nlisten = "0.0.0.0:9300"\n', "fnud.toml:2: [web] listen on 0.0.0.0 (beyond "
                                              "loopback) needs a [web] token"),
        ('[web]\nlisten = "10.0.0.1:9300"\n', "fnud.toml:2: [web] listen on 10.0.0.1"),
        ('[web]\nlisten = "127.0.0.1"\n', "fnud.toml:2: [web] listen must be HOST:PORT"),
        ('[web]\n\ntoken = "short"\n', "fnud.toml:3: [web] token must be 16+ printable"),
        ('[web]\ntoken = "with a space in it, long"\n', "fnud.toml:2: [web] token must be"),
    ],
)
def test_web_config_errors_name_file_and_line(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _config(text)
    assert str(caught.value).startswith("/etc/fnud/" + expected.split(":", 1)[0])
    assert expected in str(caught.value)


def test_web_beyond_loopback_with_a_token() -> None:
    web = _config(f'[web]\nlisten = "0.0.0.0:9300"\ntoken = "{TOKEN}"\n').web
    assert (web.listen, web.token) == ("0.0.0.0:9300", TOKEN)


# -- history and request rate ---------------------------------------------------------


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


def test_request_status_reads_uwsgi_request_lines() -> None:
    line = ("[pid: 12|app: 0|req: 3/9] 127.0.0.1 () {34 vars in 401 bytes} "
            "[Wed Dec  2 09:30:00 2026] GET /boom => generated 265 bytes in 3 msecs "
            "(HTTP/1.1 500) 2 headers in 99 bytes (1 switches on core 0)")
    assert request_status(line) == (12, 500)
    sneaky = line.replace("/boom", "/x(HTTP/1.1 503)").replace("HTTP/1.1 500", "HTTP/1.1 200")
    assert request_status(sneaky) == (12, 200)  # the URI comes first: the last one counts
    assert request_status("*** Starting uWSGI 2.0.31 ***") is None
    rates = RequestRates()
    rates.line(line)
    rates.line("[pid: 1|app: 0|req: 1/1] a custom log-format")
    assert [b[1:] for b in rates.as_dict()["buckets"]] == [[1, 1]]


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


# -- the app without sockets ----------------------------------------------------------


def _app(tmp_path: Path, token: str = "", loopback_only: bool = True) -> WebApp:
    async def status() -> dict[str, Any]:
        return {"daemon": {"pid": 1}, "programs": {}}

    hooks = Hooks(status=status, reload=lambda: (True, "queued"),
                  rollback=lambda: (False, "not available"), token=lambda: token)
    return WebApp(hooks, History.in_dir(tmp_path), RequestRates(), loopback_only=loopback_only)


def _get(app: WebApp, path: str, method: str = "GET", **headers: str) -> Any:
    request = Request(method, path, {k.lower().replace("_", "-"): v for k, v in headers.items()})
    return asyncio.run(app.handle(request))


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


# -- HTTP against a real stack ----------------------------------------------------------


class Client:
    def __init__(self, port: int) -> None:
        self.port = port

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def json(self, path: str) -> Any:
        status, _, body = self.request("GET", path)
        assert status == 200, (path, status, body)
        return json.loads(body)

    def post(self, path: str, token: str | None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        status, _, body = self.request("POST", path, headers)
        return status, json.loads(body)


@pytest.fixture(scope="module")
def web_stack() -> Iterator[tuple[StackDir, Client]]:
    """One stack for the HTTP tests: [web] and [metrics] on the same port, a token, and
    uWSGI's request log on (the tests' default ini disables it)."""
    port = free_port()
    stack = make_stack_dir(
        extra_ini="disable-logging = false",
        extra_toml=f'\n[web]\nlisten = "127.0.0.1:{port}"\ntoken = "{TOKEN}"\n'
                   f'\n[metrics]\nlisten = "127.0.0.1:{port}"\n' + WATCH_TOML,
    )
    stack.app.write_text(stack.app.read_text() + BOOM_ROUTE)
    try:
        stack.start()
        yield stack, Client(port)
    finally:
        stack.fnud("stop", timeout=60)
        try:
            assert_no_leftovers([stack.root])
        finally:
            shutil.rmtree(stack.root, ignore_errors=True)


def test_page_is_served_with_strict_headers(web_stack: tuple[StackDir, Client]) -> None:
    _, client = web_stack
    status, headers, body = client.request("GET", "/")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert b"<title>fnud</title>" in body
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-store"


def test_status_json_is_what_fnud_status_json_prints(web_stack: tuple[StackDir, Client]) -> None:
    stack, client = web_stack
    page = client.json("/status.json")
    cli = stack.status()
    assert set(page) == set(cli)
    assert {name: p["state"] for name, p in page["programs"].items()} == {
        "uwsgi": "RUNNING", "nginx": "RUNNING"
    }
    assert len(page["programs"]["uwsgi"]["workers"]) == 3
    assert "environ" not in json.dumps(page) and TOKEN not in json.dumps(page)


def test_unknown_paths_and_methods(web_stack: tuple[StackDir, Client]) -> None:
    _, client = web_stack
    for path in ("/nope", "/status.json/x", "/../etc/passwd", "/favicon.ico", "/page.html"):
        status, headers, _ = client.request("GET", path)
        assert status == 404, path
        assert headers["X-Frame-Options"] == "DENY"
    assert client.request("DELETE", "/")[0] == 405
    assert client.request("GET", "/reload")[0] == 405
    status, _, _ = client.request("GET", "/", {"Host": "attacker.example"})
    assert status == 421


def test_metrics_share_the_pages_port(web_stack: tuple[StackDir, Client]) -> None:
    _, client = web_stack
    status, headers, body = client.request("GET", "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert b'fnud_program_up{program="uwsgi"} 1.0' in body


def test_buttons_refuse_without_the_token_and_nothing_happens(
    web_stack: tuple[StackDir, Client],
) -> None:
    stack, client = web_stack
    before = client.json("/history.json")["reloads"]
    pids = stack.worker_pids()
    for token in (None, "", "wrong-token-0123456789", TOKEN + "x"):
        for action in ("reload", "rollback"):
            status, body = client.post(f"/{action}", token)
            assert status == 403, (action, token, body)
    # a reload the 403s had queued would run before this one (the lock is first come)
    assert stack.fnud("reload").returncode == 0
    after = client.json("/history.json")["reloads"]
    assert len(after) == len(before) + 1
    assert after[0]["trigger"] == "cli" and after[0]["result"] == "ok"
    assert stack.worker_pids().isdisjoint(pids)


def test_reload_button_with_the_token(web_stack: tuple[StackDir, Client]) -> None:
    stack, client = web_stack
    before = len(client.json("/history.json")["reloads"])
    pids = stack.worker_pids()
    status, body = client.post("/reload", TOKEN)
    assert status == 202 and body["accepted"] is True
    history = wait_for(
        lambda: (h := client.json("/history.json"))["reloads"][:1]
        and len(h["reloads"]) > before and h,
        timeout=90, message="the web reload in the history",
    )
    newest = history["reloads"][0]  # type: ignore[index]
    assert (newest["trigger"], newest["result"]) == ("web", "ok"), newest
    assert newest["workers_replaced"] == 3
    assert stack.worker_pids().isdisjoint(pids)
    assert history["actions"] is True  # type: ignore[index]


def test_rollback_button_with_the_token(web_stack: tuple[StackDir, Client]) -> None:
    _, client = web_stack
    before = client.json("/history.json")["reloads"]
    generation = client.json("/status.json")["generation"]
    status, body = client.post("/rollback", TOKEN)
    assert status == 202 and body["accepted"] is True, body
    reloads = wait_for(
        lambda: (r := client.json("/history.json")["reloads"]) and len(r) > len(before) and r,
        timeout=90, message="the rollback in the history",
    )
    newest = reloads[0]  # type: ignore[index]
    assert (newest["trigger"], newest["result"]) == ("web", "ok"), newest
    assert newest["reason"] == "rollback button on the status page"
    now = client.json("/status.json")["generation"]
    assert now["number"] != generation["number"]  # the previous release serves again


def test_rollback_button_needs_generations() -> None:
    from types import SimpleNamespace

    from supervisor.daemon.phase import Phase
    from supervisor.web import page as web

    chain = SimpleNamespace(
        phase=Phase.RUNNING, stack=SimpleNamespace(generation_mode=lambda: False)
    )
    accepted, message = web._rollback(chain)  # type: ignore[arg-type]
    assert not accepted and 'reload = "generation"' in message
    stopping = SimpleNamespace(phase=Phase.STOPPING)
    assert web._rollback(stopping) == (False, "cannot roll back while stopping")  # type: ignore[arg-type]
    assert web._reload(stopping) == (False, "cannot reload while stopping")  # type: ignore[arg-type]


def test_request_rate_counts_requests_and_5xx(web_stack: tuple[StackDir, Client]) -> None:
    stack, client = web_stack

    def totals() -> tuple[int, int]:
        buckets = client.json("/history.json")["requests"]["buckets"]
        return sum(b[1] for b in buckets), sum(b[2] for b in buckets)

    requests, errors = totals()
    for path in ("/boom", "/boom", "/boom", "/", "/"):
        conn = http.client.HTTPConnection("127.0.0.1", stack.http_port, timeout=10)
        conn.request("GET", path)
        conn.getresponse().read()
        conn.close()
    wait_for(lambda: totals()[1] >= errors + 3 and totals()[0] >= requests + 5,
             message="5 requests, 3 of them 5xx, counted from uWSGI's log")


def test_history_names_what_triggered_each_reload(web_stack: tuple[StackDir, Client]) -> None:
    stack, client = web_stack

    def newest_after(count: int) -> dict[str, Any] | None:
        reloads = client.json("/history.json")["reloads"]
        return reloads[0] if len(reloads) > count else None

    count = len(client.json("/history.json")["reloads"])
    assert not client.json("/status.json")["reloading"]
    assert stack.fnud("reload", env={"MAINPID": "1"}).returncode == 0  # as ExecReload= runs it
    assert newest_after(count)["trigger"] == "systemd"  # type: ignore[index]
    os.kill(int(stack.status()["daemon"]["pid"]), signal.SIGHUP)  # type: ignore[index]
    entry = wait_for(lambda: newest_after(count + 1), timeout=90, message="the SIGHUP reload")
    assert entry["trigger"] == "sighup"  # type: ignore[index]
    stack.set_greeting("saved for the status page")
    entry = wait_for(lambda: newest_after(count + 2), timeout=90, message="the reload on save")
    assert (entry["trigger"], entry["result"]) == ("save", "ok")  # type: ignore[index]


def test_history_survives_a_daemon_restart(web_stack: tuple[StackDir, Client]) -> None:
    stack, client = web_stack
    before = client.json("/history.json")["reloads"]
    assert before, "the tests above reloaded"
    assert stack.fnud("stop").returncode == 0
    stack.start()
    assert client.json("/history.json")["reloads"] == before
