"""The control protocol's frames and its blocking client, without asyncio.

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON (an
object); see control.py for the server and the conversation. This module is what the
thin CLI commands import: socket, struct and json only, so that `fnud status` spends its
time talking to the daemon rather than importing the daemon's libraries.
"""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

MAX_FRAME = 1 << 20
HEADER = struct.Struct(">I")


class ProtocolError(Exception):
    pass


class ClientError(Exception):
    """The daemon answered no; the message is its one-line reason."""


def encode(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":")).encode()
    if len(body) > MAX_FRAME:
        raise ProtocolError(f"frame of {len(body)} bytes exceeds {MAX_FRAME}")
    return HEADER.pack(len(body)) + body


def decode_body(body: bytes) -> dict[str, Any]:
    try:
        message = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"bad JSON: {exc}") from None
    except RecursionError:  # [[[[...: json's decoder recurses once per level
        raise ProtocolError("bad JSON: nested too deeply") from None
    if not isinstance(message, dict):
        raise ProtocolError("a message must be a JSON object")
    return message


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
    (length,) = HEADER.unpack(_recv_exact(sock, HEADER.size))
    if length > MAX_FRAME:
        raise ProtocolError(f"frame of {length} bytes exceeds {MAX_FRAME}")
    return decode_body(_recv_exact(sock, length))
