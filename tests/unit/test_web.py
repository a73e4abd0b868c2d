"""TODO."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest

from supervisor.config.parse import parse_config
from supervisor.web.history import History, RequestRates
from supervisor.web.page import Hooks, Page, Request, WebApp, host_name

TOKEN = "test-token-0123456789abcdef"


def _config(text: str) -> Any:
    return parse_config(text, Path("/etc/fnud/fnud.toml"))


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
