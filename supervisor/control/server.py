"""The control protocol: length-prefixed JSON over a Unix socket.

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON
(an object). The client sends ``{"cmd": NAME, "args": {...}}``; the server answers
with any number of ``{"progress": TEXT}`` frames and then exactly one
``{"ok": true, "result": ...}`` or ``{"ok": false, "error": TEXT}``.
Frames over ``MAX_FRAME`` bytes, bad JSON and unknown commands get an error reply;
the connection (for bad framing) or the server (always) keeps going. The frames and
the blocking client live in wire.py (no asyncio: the CLI imports that alone).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from supervisor.common.progress import Emit
from supervisor.control.wire import HEADER, MAX_FRAME, ProtocolError, decode_body, encode

#: runs one command: (name, args, progress) -> its answer; raises CommandError
Dispatch = Callable[[str, dict[str, Any], Emit], Awaitable[Any]]


class CommandError(Exception):
    """A command failed in a way the user should read (one line)."""


async def read_frame(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    """One message, or None at a clean end of stream."""
    try:
        header = await reader.readexactly(HEADER.size)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise ProtocolError("truncated frame header") from None
        return None
    (length,) = HEADER.unpack(header)
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

    def __init__(self, path: Path, dispatch: Dispatch, log: Any) -> None:
        self.path = path
        self.dispatch = dispatch
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
        if not isinstance(name, str):
            return {"ok": False, "error": f"the command must be a string, not {name!r}"}
        if not isinstance(args, dict):
            return {"ok": False, "error": "args must be a JSON object"}

        async def emit(text: str) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                await self._send(writer, {"progress": text})

        try:
            return {"ok": True, "result": await self.dispatch(name, args, emit)}
        except CommandError as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # a bug must not take the daemon down
            self.log.exception("control command crashed", cmd=name)
            return {"ok": False, "error": f"internal error in {name}: {exc}"}

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
        writer.write(encode(message))
        await writer.drain()
