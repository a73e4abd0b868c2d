"""The control protocol and server, without the stack."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import struct
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supervisor.control import server, wire
from supervisor.daemon import commands
from supervisor.daemon.phase import Phase
from testkit.fuzzing import FRAME_LENGTHS, control_frames, control_messages, examples


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


def _real_commands() -> list[Any]:
    """reload and ping as the daemon has them; no reload runs: a stopping daemon refuses
    what the argument check lets through."""
    def never(*args: Any) -> Any:
        raise AssertionError("a refused command ran")

    return [commands.Reload(never, lambda: Phase.STOPPING), commands.Ping(lambda: {"pid": 1})]


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


@FUZZ
@given(length=FRAME_LENGTHS, body=st.binary(max_size=80), cut=st.integers(0, 90))
def test_read_frame_on_any_bytes(length: int, body: bytes, cut: int) -> None:
    data = (struct.pack(">I", length) + body)[:cut]
    try:
        message = _read_frame_of(data)
    except wire.ProtocolError as exc:
        assert str(exc)
    else:
        assert message is None or isinstance(message, dict)
        assert message is not None or data == b""


def _raw(path: Path, payload: bytes, timeout: float = 5.0) -> list[dict[str, Any]]:
    """Send ``payload``, half-close, read every frame until the server closes."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        with contextlib.suppress(BrokenPipeError):  # closed after a frame it refused
            sock.sendall(payload)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
        data = b""
        with contextlib.suppress(ConnectionResetError):  # it closed on unread input
            while chunk := sock.recv(65536):
                data += chunk
    frames = []
    while len(data) >= 4:
        (length,) = struct.unpack(">I", data[:4])
        frames.append(wire.decode_body(data[4 : 4 + length]))
        data = data[4 + length :]
    assert data == b"", "a torn frame"
    return frames


def test_wrong_args_get_one_line_not_an_internal_error(sock_dir: Path) -> None:
    """bool("yes") is True: a reload with nginx "yes" and no_wait [1] used to run."""
    path = sock_dir / "s.sock"
    replies: list[Any] = []

    async def body() -> None:
        for args in ({"nginx": "yes", "no_wait": [1]}, {"reason": 7}, {"app": 1},
                     {"bogus": True}):
            replies.append(await asyncio.to_thread(
                _raw, path, wire.encode({"cmd": "reload", "args": args})))
        replies.append(await asyncio.to_thread(
            _raw, path, wire.encode({"cmd": "ping", "args": {"x": None}})))

    asyncio.run(_serve(path, body, _real_commands()))
    errors = [frames[-1]["error"] for frames in replies]
    assert errors == [
        'reload: nginx must be true or false, not a string ("yes")',
        "reload: reason must be a string, not a number (7)",
        "reload: app must be true or false, not a number (1)",
        "reload: no argument 'bogus' (it takes: app, force_nginx, nginx, no_wait, reason, "
        "trigger)",
        "ping: no argument 'x' (it takes: none)",
    ]


def test_a_huge_unknown_command_gets_a_short_answer(sock_dir: Path) -> None:
    """The name was quoted whole: an answer over MAX_FRAME could not be encoded, the
    connection task died and the client got nothing."""
    path = sock_dir / "s.sock"
    frames: list[Any] = []
    name = "x" * (wire.MAX_FRAME - 40)  # the request fits; quoted whole, the answer did not

    async def body() -> None:
        frames.extend(await asyncio.to_thread(_raw, path, wire.encode({"cmd": name})))

    asyncio.run(_serve(path, body))
    assert len(frames) == 1 and frames[0]["ok"] is False
    assert frames[0]["error"].startswith("unknown command 'xx") and len(frames[0]["error"]) < 200


def test_an_answer_over_max_frame_is_an_error_reply(sock_dir: Path) -> None:
    path = sock_dir / "s.sock"
    frames: list[Any] = []

    async def body() -> None:
        blob = "x" * (wire.MAX_FRAME - 40)  # the request fits, the echo does not
        frames.extend(await asyncio.to_thread(
            _raw, path, wire.encode({"cmd": "status", "args": {"blob": blob}})))

    asyncio.run(_serve(path, body))
    assert [f.get("progress") for f in frames[:-1]] == ["working"]
    assert frames[-1]["ok"] is False and "the answer is too large" in frames[-1]["error"]


async def _until_no_clients(listener: server.Server, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while listener._clients:
        assert asyncio.get_running_loop().time() < deadline, "a connection is still served"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("payload", [b"", b"\x00\x00", struct.pack(">I", 100) + b"{" * 10])
def test_a_client_that_never_sends_a_whole_frame_is_let_go(
    sock_dir: Path, monkeypatch: pytest.MonkeyPatch, payload: bytes
) -> None:
    """It held a server task (and the daemon's fd) for as long as it stayed connected."""
    monkeypatch.setattr(server, "READ_TIMEOUT", 0.3)
    path = sock_dir / "s.sock"

    def silent() -> bytes:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(path))
            sock.sendall(payload)  # and nothing more, but stays connected
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
            return data

    async def body() -> None:
        async with _serving(path) as listener:
            data = await asyncio.to_thread(silent)
            assert wire.decode_body(data[4:]) == {
                "ok": False, "error": "no whole request within 0.3 s"
            }
            await _until_no_clients(listener)

    asyncio.run(body())


def test_control_clients_are_bounded(sock_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "MAX_CLIENTS", 3)
    path = sock_dir / "s.sock"

    async def body() -> None:
        async with _serving(path) as listener:
            held = []
            for _ in range(3):
                _, writer = await asyncio.open_unix_connection(str(path))
                held.append(writer)
            while len(listener._clients) < 3:
                await asyncio.sleep(0.01)
            with pytest.raises(wire.ClientError, match="busy: 3 control connections are open"):
                await asyncio.to_thread(wire.call, path, "status", {"a": 1}, 5.0)
            for writer in held:
                writer.close()
            await _until_no_clients(listener)
            answer = await asyncio.to_thread(wire.call, path, "status", {"a": 1}, 5.0)
            assert answer == {"echo": {"a": 1}}

    asyncio.run(body())


def test_an_answer_nobody_reads_does_not_keep_the_connection(
    sock_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server, "WRITE_TIMEOUT", 0.3)
    path = sock_dir / "s.sock"

    async def body() -> None:
        async with _serving(path) as listener:
            _, writer = await asyncio.open_unix_connection(str(path))
            blob = "x" * (wire.MAX_FRAME - 100)  # its echo fills the socket's buffers
            writer.write(wire.encode({"cmd": "status", "args": {"blob": blob}}))
            await writer.drain()
            await asyncio.sleep(0.1)
            assert listener._clients  # answering, and nobody takes the answer
            await _until_no_clients(listener)
            writer.close()

    asyncio.run(body())


_FRAMES = control_frames(control_messages(
    ["status", "reload", "ping", "nope", ""],
    ["a", "fail", "refuse", "blob", "nginx", "no_wait", "reason", "x"],
))


@settings(max_examples=examples(60), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=st.lists(_FRAMES, min_size=1, max_size=4))
def test_any_frames_get_answers_never_an_internal_error(
    sock_dir: Path, frames: list[bytes]
) -> None:
    path = sock_dir / "fuzz.sock"  # the same for every example: each server unlinks it

    async def body() -> None:
        async with _serving(path, _real_commands()) as listener:
            replies = await asyncio.to_thread(_raw, path, b"".join(frames))
            for reply in replies:
                assert set(reply) in ({"ok", "result"}, {"ok", "error"}, {"progress"}), reply
                assert "internal error" not in str(reply.get("error"))
                assert "\n" not in str(reply.get("error"))
            assert await asyncio.to_thread(wire.call, path, "status", {"a": 2}, 5.0)
            await _until_no_clients(listener)

    asyncio.run(body())
