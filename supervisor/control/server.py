"""The control protocol: length-prefixed JSON over a Unix socket.

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON
(an object). The client sends ``{"cmd": NAME, "args": {...}}``; the server answers
with any number of ``{"progress": TEXT}`` frames and then exactly one
``{"ok": true, "result": ...}`` or ``{"ok": false, "error": TEXT}``.
Frames over ``MAX_FRAME`` bytes, bad JSON and unknown commands get an error reply;
the connection (for bad framing) or the server (always) keeps going. The frames and
the blocking client live in wire.py (no asyncio: the CLI imports that alone).

Bounded: a request must arrive whole within ``READ_TIMEOUT`` of the connection (or of
the previous answer), an answer must be taken within ``WRITE_TIMEOUT``, and at most
``MAX_CLIENTS`` connections are served at once (the next ones get a one-line refusal).
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

MAX_CLIENTS = 64  # connections served at once
READ_TIMEOUT = 10.0  # seconds for a whole request, from the connection or the last answer
WRITE_TIMEOUT = 10.0  # seconds for the client to take (the rest of) an answer


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
        # drain() returns once the whole answer is with the kernel, not just most of it
        writer.transport.set_write_buffer_limits(high=0)
        try:
            await self._converse(reader, writer, len(self._clients))
        except (ConnectionError, OSError, asyncio.TimeoutError):
            pass  # the client went away, or does not take its answer
        except asyncio.CancelledError:
            pass  # daemon shutting down; end the connection quietly
        except Exception:  # a bug must not take the server down, nor keep the connection
            self.log.exception("control connection crashed")
        finally:
            if task is not None:
                self._clients.discard(task)
            if writer.transport.get_write_buffer_size():
                writer.transport.abort()  # an answer nobody takes must not keep the fd
            else:
                writer.close()

    async def _converse(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count: int
    ) -> None:
        uid = peer_uid(writer)
        if uid not in (0, os.geteuid()):
            self.log.warning("control connection refused", uid=uid)
            await self._refuse(reader, writer, "permission denied")
            return
        if count > MAX_CLIENTS:
            await self._refuse(
                reader, writer, f"busy: {MAX_CLIENTS} control connections are open; try again"
            )
            return
        while True:
            try:
                request = await asyncio.wait_for(read_frame(reader), READ_TIMEOUT)
            except ProtocolError as exc:
                await self._send(writer, {"ok": False, "error": str(exc)})
                return  # framing is lost: close this connection only
            except asyncio.TimeoutError:
                await self._send(writer, {
                    "ok": False, "error": f"no whole request within {READ_TIMEOUT:g} s",
                })
                return
            if request is None:
                return
            await self._send(writer, await self._dispatch(request, writer))

    async def _refuse(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, error: str
    ) -> None:
        # take the request in first (briefly), so the client reads our answer instead of
        # failing its send on a socket we already closed
        with contextlib.suppress(ProtocolError, asyncio.TimeoutError):
            await asyncio.wait_for(read_frame(reader), 2.0)
        await self._send(writer, {"ok": False, "error": error})

    async def _dispatch(self, request: dict[str, Any], writer: asyncio.StreamWriter) -> Any:
        name = request.get("cmd")
        args = request.get("args", {})
        if not isinstance(name, str):
            return {"ok": False, "error": f"cmd must be a string, not {json_type(name)}"}
        if not isinstance(args, dict):
            return {"ok": False, "error": f"args must be an object, not {json_type(args)}"}
        gone = False

        async def emit(text: str) -> None:
            nonlocal gone  # a client that left or takes nothing slows no operation down
            if not gone:
                try:
                    await self._send(writer, {"progress": text})
                except (ConnectionError, OSError, asyncio.TimeoutError):
                    gone = True

        try:
            return {"ok": True, "result": await self.dispatch(name, args, emit)}
        except CommandError as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # a bug must not take the daemon down
            self.log.exception("control command crashed", cmd=name)
            return {"ok": False, "error": f"internal error in {name}: {exc}"}

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
        try:
            frame = encode(message)
        except ProtocolError as exc:  # an answer over MAX_FRAME: say so instead
            frame = encode({"ok": False, "error": f"the answer is too large: {exc}"})
        writer.write(frame)
        await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT)


def json_type(value: object) -> str:
    """How JSON calls the type of a decoded value (for one-line errors)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"
