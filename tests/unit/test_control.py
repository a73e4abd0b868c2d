"""The control protocol and server, without the stack."""

from __future__ import annotations

import asyncio
import shutil
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from supervisor.control import server, wire
from supervisor.daemon import commands


class Echo:
    """A command that reports progress, then echoes its args (or fails when asked)."""

    name = "status"
    started = "echoing"

    def refusal(self, args: Any) -> str:
        return "not now" if args.get("refuse") else ""

    async def run(self, args: Any, emit: Any) -> Any:
        await emit("working")
        if args.get("fail"):
            raise server.CommandError("it went wrong")
        return {"echo": dict(args)}


async def _serve(path: Path, body: Any) -> None:
    def spawn(coro: Any, name: str) -> Any:
        return asyncio.get_running_loop().create_task(coro, name=name)

    registry = commands.Registry([Echo()], spawn, structlog.get_logger())
    listener = server.Server(path, registry.call, structlog.get_logger())
    await listener.start()
    try:
        await body()
    finally:
        await listener.close()


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="fnud-ctl-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def test_frames_round_trip() -> None:
    message = {"cmd": "status", "args": {"x": [1, "ü"]}}
    frame = wire.encode(message)
    assert struct.unpack(">I", frame[:4])[0] == len(frame) - 4
    assert wire.decode_body(frame[4:]) == message


def test_oversized_and_malformed_bodies_are_rejected() -> None:
    with pytest.raises(wire.ProtocolError, match="exceeds"):
        wire.encode({"blob": "x" * (wire.MAX_FRAME + 1)})
    with pytest.raises(wire.ProtocolError, match="bad JSON"):
        wire.decode_body(b"{oops")
    with pytest.raises(wire.ProtocolError, match="object"):
        wire.decode_body(b"[1, 2]")


def test_server_answers_with_progress_then_result(sock_dir: Path) -> None:
    path = sock_dir / "s.sock"
    progress: list[str] = []
    results: list[Any] = []

    async def body() -> None:
        assert (path.stat().st_mode & 0o777) == 0o600
        results.append(
            await asyncio.to_thread(
                wire.call, path, "status", {"a": 1}, 5.0, progress.append
            )
        )
        with pytest.raises(wire.ClientError, match="it went wrong"):
            await asyncio.to_thread(wire.call, path, "status", {"fail": True}, 5.0)
        with pytest.raises(wire.ClientError, match="unknown command 'nope'"):
            await asyncio.to_thread(wire.call, path, "nope", None, 5.0)
        with pytest.raises(wire.ClientError, match="not now"):
            await asyncio.to_thread(wire.call, path, "status", {"refuse": True}, 5.0)

    asyncio.run(_serve(path, body))
    assert progress == ["working"]
    assert results == [{"echo": {"a": 1}}]


