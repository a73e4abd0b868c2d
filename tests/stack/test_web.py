"""The status page ([web]): unit tests of its parts, then HTTP against a real stack."""

from __future__ import annotations

import http.client
import json
import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from testkit.stackdir import (
    WATCH_TOML,
    StackDir,
    cleaned_up,
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
    with cleaned_up([stack]):
        stack.start()
        yield stack, Client(port)


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
