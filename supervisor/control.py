"""The control protocol: length-prefixed JSON over a Unix socket.

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON
(an object). The client sends ``{"cmd": NAME, "args": {...}}``; the server answers
with any number of ``{"progress": TEXT}`` frames and then exactly one
``{"ok": true, "result": ...}`` or ``{"ok": false, "error": TEXT}``.
Frames over ``MAX_FRAME`` bytes, bad JSON and unknown commands get an error reply;
the connection (for bad framing) or the server (always) keeps going.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

MAX_FRAME = 1 << 20
_HEADER = struct.Struct(">I")

Emit = Callable[[str], Awaitable[None]]
Handler = Callable[[dict[str, Any], Emit], Awaitable[Any]]


class ProtocolError(Exception):
    pass


class CommandError(Exception):
    """A command failed in a way the user should read (one line)."""


def encode(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":")).encode()
    if len(body) > MAX_FRAME:
        raise ProtocolError(f"frame of {len(body)} bytes exceeds {MAX_FRAME}")
    return _HEADER.pack(len(body)) + body


def decode_body(body: bytes) -> dict[str, Any]:
    try:
        message = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"bad JSON: {exc}") from None
    if not isinstance(message, dict):
        raise ProtocolError("a message must be a JSON object")
    return message


async def read_frame(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    """One message, or None at a clean end of stream."""
    try:
        header = await reader.readexactly(_HEADER.size)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise ProtocolError("truncated frame header") from None
        return None
    (length,) = _HEADER.unpack(header)
    if length > MAX_FRAME:
        raise ProtocolError(f"frame of {length} bytes exceeds {MAX_FRAME}")
    try:
        body = await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        raise ProtocolError("truncated frame") from None
    return decode_body(body)


def peer_uid(writer: asyncio.StreamWriter) -> int:
    sock = writer.get_extra_info("socket")
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


class Server:
    """Serves commands on a 0600 Unix socket; only root and our own uid may talk."""

    def __init__(self, path: Path, handlers: dict[str, Handler], log: Any) -> None:
        self.path = path
        self.handlers = handlers
        self.log = log
        self._server: asyncio.AbstractServer | None = None
        self._clients: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        old = os.umask(0o177)  # the socket is born 0600: no window for another user
        try:
            self._server = await asyncio.start_unix_server(self._client, path=str(self.path))
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._clients.add(task)
        try:
            uid = peer_uid(writer)
            if uid not in (0, os.geteuid()):
                self.log.warning("control connection refused", uid=uid)
                # take the request in first, so the client reads our answer instead of
                # failing its send on a socket we already closed
                with contextlib.suppress(ProtocolError, asyncio.TimeoutError):
                    await asyncio.wait_for(read_frame(reader), 2.0)
                await self._send(writer, {"ok": False, "error": "permission denied"})
                return
            while True:
                try:
                    request = await read_frame(reader)
                except ProtocolError as exc:
                    await self._send(writer, {"ok": False, "error": str(exc)})
                    return  # framing is lost: close this connection only
                if request is None:
                    return
                await self._send(writer, await self._dispatch(request, writer))
        except (ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            pass  # daemon shutting down; end the connection quietly
        finally:
            if task is not None:
                self._clients.discard(task)
            writer.close()

    async def _dispatch(self, request: dict[str, Any], writer: asyncio.StreamWriter) -> Any:
        name = request.get("cmd")
        args = request.get("args", {})
        if not isinstance(name, str) or name not in self.handlers:
            known = ", ".join(sorted(self.handlers))
            return {"ok": False, "error": f"unknown command {name!r} (known: {known})"}
        if not isinstance(args, dict):
            return {"ok": False, "error": "args must be a JSON object"}

        async def emit(text: str) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                await self._send(writer, {"progress": text})

        try:
            return {"ok": True, "result": await self.handlers[name](args, emit)}
        except CommandError as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # a bug must not take the daemon down
            self.log.exception("control command crashed", cmd=name)
            return {"ok": False, "error": f"internal error in {name}: {exc}"}

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
        writer.write(encode(message))
        await writer.drain()


class ClientError(Exception):
    pass


def call(
    path: Path,
    cmd: str,
    args: dict[str, Any] | None = None,
    timeout: float | None = 30.0,
    on_progress: Callable[[str], None] | None = None,
) -> Any:
    """Send one command and wait for its final reply (blocking; for the CLI)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
        sock.sendall(encode({"cmd": cmd, "args": args or {}}))
        while True:
            message = _recv_frame(sock)
            if "progress" in message:
                if on_progress is not None:
                    on_progress(str(message["progress"]))
                continue
            if message.get("ok"):
                return message.get("result")
            raise ClientError(str(message.get("error", "unknown error")))
    finally:
        sock.close()


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = sock.recv(size)
        if not chunk:
            raise ConnectionResetError("the daemon closed the connection")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _recv_frame(sock: socket.socket) -> dict[str, Any]:
    (length,) = _HEADER.unpack(_recv_exact(sock, _HEADER.size))
    if length > MAX_FRAME:
        raise ProtocolError(f"frame of {length} bytes exceeds {MAX_FRAME}")
    return decode_body(_recv_exact(sock, length))
