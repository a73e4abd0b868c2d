"""The control protocol and server, without the stack."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import struct
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.control import server, wire
from supervisor.daemon import commands
from testkit.fuzzing import examples


class Echo:
    """A command that reports progress, then echoes its args (or fails when asked)."""

    name = "status"
    started = "echoing"
    arg_types: ClassVar[dict[str, type]] = {"a": int, "fail": bool, "refuse": bool, "blob": str}

    def refusal(self, args: Any) -> str:
        return "not now" if args.get("refuse") else ""

    async def run(self, args: Any, emit: Any) -> Any:
        await emit("working")
        if args.get("fail"):
            raise server.CommandError("it went wrong")
        return {"echo": dict(args)}


@contextlib.asynccontextmanager
async def _serving(path: Path, more: list[Any] | None = None) -> AsyncIterator[server.Server]:
    def spawn(coro: Any, name: str) -> Any:
        return asyncio.get_running_loop().create_task(coro, name=name)

    registry = commands.Registry([Echo(), *(more or [])], spawn, structlog.get_logger())
    listener = server.Server(path, registry.call, structlog.get_logger())
    await listener.start()
    try:
        yield listener
    finally:
        await listener.close()


async def _serve(path: Path, body: Any, more: list[Any] | None = None) -> None:
    async with _serving(path, more):
        await body()


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




# -- fuzzed frames and misbehaving clients ---------------------------------------------

FUZZ = settings(max_examples=examples(200), deadline=None)


@FUZZ
@given(body=st.one_of(
    st.binary(max_size=200),
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
        max_leaves=20,
    ).map(lambda v: json.dumps(v).encode()),
    st.integers(1, 200_000).map(lambda depth: b"[" * depth),
    st.integers(1, 200_000).map(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth),
))
def test_any_body_decodes_to_an_object_or_a_protocol_error(body: bytes) -> None:
    try:
        message = wire.decode_body(body)
    except wire.ProtocolError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert isinstance(message, dict)


@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000])
def test_deeply_nested_json_is_a_protocol_error(body: bytes) -> None:
    """json's decoder recurses once per level: a RecursionError escaped the server's
    read, and the client got no answer."""
    with pytest.raises(wire.ProtocolError, match="nested too deeply"):
        wire.decode_body(body)


def _read_frame_of(data: bytes) -> Any:
    async def body() -> Any:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        return await server.read_frame(reader)

    return asyncio.run(body())


_LENGTHS = st.one_of(st.integers(0, 64), st.sampled_from([wire.MAX_FRAME, wire.MAX_FRAME + 1,
                                                         2**32 - 1]))


@FUZZ
@given(length=_LENGTHS, body=st.binary(max_size=80), cut=st.integers(0, 90))
def test_read_frame_on_any_bytes(length: int, body: bytes, cut: int) -> None:
    data = (struct.pack(">I", length) + body)[:cut]
    try:
        message = _read_frame_of(data)
    except wire.ProtocolError as exc:
        assert str(exc)
    else:
        assert message is None or isinstance(message, dict)
        assert message is not None or data == b""
