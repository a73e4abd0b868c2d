"""The status page: ``[web] listen`` serves one HTML file, its data and two buttons.

Routes (anything else is 404):
  GET  /              the page (page.html beside this module: CSS and script inline, no CDN)
  GET  /status.json   what ``fnud status --json`` prints
  GET  /history.json  the last reloads, the request rate, whether the buttons work
  GET  /metrics       Prometheus text, when ``[metrics] listen`` is the same address
  POST /reload        with ``Authorization: Bearer <[web] token>``: a gated reload
  POST /rollback      likewise: back to the previous generation, where there is one
Without a token in the config, or with a wrong one, POSTs get 403 and nothing happens.

The page reads status and never signals: the two actions go through hooks the daemon
gives (its command registry: the same reload and rollback as every other door). Every
answer carries a strict Content-Security-Policy (the inline script and style are allowed
by their hashes) and forbids framing.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from supervisor.common.ports import is_loopback
from supervisor.logs import logsetup
from supervisor.web.close import finish
from supervisor.web.history import History, RequestRates

MAX_HEAD = 16384
MAX_BODY = 4096
MAX_CLIENTS = 32
READ_TIMEOUT = 5.0  # for the whole request, head and body
WRITE_TIMEOUT = 5.0  # for the client to take its answer

Action = Callable[[], tuple[bool, str]]  # (accepted, one line for the user)

REASONS = {
    200: "OK", 202: "Accepted", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 408: "Request Timeout", 409: "Conflict",
    413: "Content Too Large", 429: "Too Many Requests", 431: "Request Header Fields Too Large",
    421: "Misdirected Request", 500: "Internal Server Error", 503: "Service Unavailable",
}
JSON = "application/json"
HTML = "text/html; charset=utf-8"
METRICS = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class Hooks:
    """What the page needs from the daemon."""

    status: Callable[[], Awaitable[dict[str, Any]]]
    reload: Action
    rollback: Action
    token: Callable[[], str]  # the token in force ('' = read-only); a reload may change it
    metrics: Callable[[], Awaitable[bytes]] | None = None


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    peer: str = ""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = JSON
    allow: str = ""


def json_response(status: int, data: Any) -> Response:
    return Response(status, json.dumps(data, separators=(",", ":")).encode())


def _hash(source: str) -> str:
    digest = hashlib.sha256(source.encode()).digest()
    return "'sha256-" + base64.b64encode(digest).decode() + "'"


@dataclass(frozen=True)
class Page:
    html: bytes
    csp: str

    @classmethod
    def load(cls) -> Page:
        text = resources.files("supervisor.web").joinpath("page.html").read_text(encoding="utf-8")
        scripts = re.findall(r"<script>(.*?)</script>", text, re.S)
        styles = re.findall(r"<style>(.*?)</style>", text, re.S)
        csp = "; ".join([
            "default-src 'none'",
            "script-src " + " ".join(_hash(s) for s in scripts),
            "style-src " + " ".join(_hash(s) for s in styles),
            "connect-src 'self'",
            "img-src data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ])
        return cls(text.encode(), csp)


def host_name(host: str) -> str:
    """The name part of a Host header ('[::1]:9300' -> '[::1]', 'a:1' -> 'a')."""
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.rpartition(":")[0] if ":" in host else host


def bearer(headers: dict[str, str]) -> str:
    scheme, _, value = headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


@dataclass
class WebApp:
    """Routing and checks, without sockets (the server below feeds it requests)."""

    hooks: Hooks
    history: History
    rates: RequestRates
    loopback_only: bool = True  # listening on loopback: refuse other Host names
    page: Page = field(default_factory=Page.load)

    def __post_init__(self) -> None:
        self.log = logsetup.get("web")

    async def handle(self, request: Request) -> Response:
        host = request.headers.get("host", "")
        if self.loopback_only and host and not is_loopback(host_name(host)):
            # a browser led here by another name (DNS rebinding): not for us
            return json_response(421, {"error": f"not served for host {host}"})
        route = (request.method, request.path)
        if route == ("GET", "/"):
            return Response(200, self.page.html, HTML)
        if route == ("GET", "/status.json"):
            return json_response(200, await self.hooks.status())
        if route == ("GET", "/history.json"):
            return json_response(200, self.history_data())
        if route == ("GET", "/metrics") and self.hooks.metrics is not None:
            return Response(200, await self.hooks.metrics(), METRICS)
        actions = {"/reload": self.hooks.reload, "/rollback": self.hooks.rollback}
        if request.path in actions:
            if request.method != "POST":
                return Response(405, b'{"error":"POST only"}', JSON, allow="POST")
            return self.act(request, request.path[1:], actions[request.path])
        if request.method not in ("GET", "POST"):
            return Response(405, b'{"error":"GET or POST only"}', JSON, allow="GET, POST")
        return json_response(404, {"error": "not found"})

    def history_data(self) -> dict[str, Any]:
        return {
            "reloads": self.history.newest_first(),
            "requests": self.rates.as_dict(),
            "actions": bool(self.hooks.token()),
        }

    def act(self, request: Request, name: str, action: Action) -> Response:
        token = self.hooks.token()
        if not token:
            return json_response(403, {"error": "read-only: set [web] token to allow this"})
        given = bearer(request.headers)
        if not hmac.compare_digest(given.encode(), token.encode()):
            self.log.warning("web action refused: wrong token", action=name, peer=request.peer)
            return json_response(403, {"error": "wrong token"})
        origin = request.headers.get("origin", "")
        host = request.headers.get("host", "")
        if origin and origin not in (f"http://{host}", f"https://{host}"):
            return json_response(403, {"error": f"origin {origin} is not this page"})
        accepted, message = action()
        self.log.info("web action", action=name, accepted=accepted, detail=message,
                      peer=request.peer)
        return json_response(202 if accepted else 409, {"accepted": accepted, "message": message})


def render(response: Response, csp: str) -> bytes:
    head = [
        f"HTTP/1.1 {response.status} {REASONS.get(response.status, 'Unknown')}",
        f"Content-Type: {response.content_type}",
        f"Content-Length: {len(response.body)}",
        f"Content-Security-Policy: {csp}",
        "X-Frame-Options: DENY",
        "X-Content-Type-Options: nosniff",
        "Referrer-Policy: no-referrer",
        "Cross-Origin-Opener-Policy: same-origin",
        "Cross-Origin-Resource-Policy: same-origin",
        "Cache-Control: no-store",
        "Connection: close",
    ]
    if response.allow:
        head.append(f"Allow: {response.allow}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + response.body


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def read_request(reader: asyncio.StreamReader, peer: str) -> Request:
    """One request, head and body, within READ_TIMEOUT; BadRequest for anything else."""
    try:
        return await asyncio.wait_for(_read_request(reader, peer), READ_TIMEOUT)
    except asyncio.TimeoutError:
        raise BadRequest(408, f"no whole request within {READ_TIMEOUT:g} s") from None
    except asyncio.IncompleteReadError:
        raise BadRequest(400, "the request ends before its head or body does") from None


_LENGTH = re.compile(r"[0-9]+")


async def _read_request(reader: asyncio.StreamReader, peer: str) -> Request:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        raise BadRequest(431, "request head too large") from None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise BadRequest(400, "bad request line")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if "transfer-encoding" in headers:
        raise BadRequest(400, "no chunked bodies here")
    text = headers.get("content-length", "0") or "0"
    if not _LENGTH.fullmatch(text):  # digits only: no sign, no "1_000", no "²"
        raise BadRequest(400, "bad Content-Length")
    length = int(text) if len(text) <= len(str(MAX_BODY)) else MAX_BODY + 1
    if length > MAX_BODY:
        raise BadRequest(413, "body too large")
    if length:
        await reader.readexactly(length)  # unused
    return Request(parts[0], parts[1].split("?", 1)[0], headers, peer)


class WebServer:
    """A tiny HTTP/1.1 server in the daemon's loop: one request per connection."""

    def __init__(self, app: WebApp) -> None:
        self.app = app
        self.server: asyncio.AbstractServer | None = None
        self.clients = 0
        self.log = logsetup.get("web")

    async def start(self, host: str, port: int) -> None:
        self.server = await asyncio.start_server(self._client, host, port, limit=MAX_HEAD)
        self.log.info("serving the status page", url=f"http://{host}:{port}/",
                      actions=bool(self.app.hooks.token()))

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 1.0)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.clients >= MAX_CLIENTS:
            busy = json_response(429, {"error": "too many connections at once; try again"})
            writer.write(render(busy, self.app.page.csp))
            writer.close()
            return
        self.clients += 1
        writer.transport.set_write_buffer_limits(high=0)  # drain(): all of it is sent
        try:
            writer.write(render(await self._answer(reader, writer), self.app.page.csp))
            await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT)
        except (OSError, asyncio.TimeoutError, asyncio.CancelledError):
            pass
        finally:
            self.clients -= 1
            finish(writer)

    async def _answer(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> Response:
        try:
            request = await read_request(reader, str(writer.get_extra_info("peername", "")))
        except BadRequest as exc:
            return json_response(exc.status, {"error": str(exc)})
        try:
            return await self.app.handle(request)
        except Exception:  # a bug here must not take the daemon's loop with it
            self.log.exception("status page request crashed", path=request.path)
            return json_response(500, {"error": "internal error: see fnud's log"})
