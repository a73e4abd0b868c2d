"""A minimal asynchronous HTTP/1.0 client (GET only), used to prove a request through
nginx succeeds (start, reload) and by the health probe (supervisor.healthprobe)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit


class HealthError(Exception):
    """No usable answer; ``kind`` is "timeout", "connect" or "protocol"."""

    def __init__(self, message: str, kind: str = "protocol") -> None:
        super().__init__(message)
        self.kind = kind


async def http_get(url: str, timeout: float) -> tuple[int, bytes]:
    """GET ``url``; return (status, body). Raise HealthError on any failure."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 80
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query

    async def _get() -> bytes:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            request = f"GET {path} HTTP/1.0\r\nHost: {parts.netloc}\r\nUser-Agent: fnud\r\n\r\n"
            writer.write(request.encode())
            await writer.drain()
            return await reader.read()
        finally:
            writer.close()

    try:
        raw = await asyncio.wait_for(_get(), timeout)
    except asyncio.TimeoutError:
        raise HealthError(f"{url}: no answer within {timeout:g}s", "timeout") from None
    except OSError as exc:
        raise HealthError(f"{url}: {exc.strerror or exc}", "connect") from None
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    if len(status_line) < 2 or not status_line[1].isdigit():
        raise HealthError(f"{url}: not an HTTP answer")
    return int(status_line[1]), body


async def check(url: str, timeout: float) -> None:
    """Raise HealthError unless ``url`` answers 2xx or 3xx."""
    status, _ = await http_get(url, timeout)
    if not 200 <= status < 400:
        raise HealthError(f"{url}: HTTP {status}")
