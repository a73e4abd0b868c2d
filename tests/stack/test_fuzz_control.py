"""The control socket of a real daemon under fuzzed and misbehaving clients.

After each batch the daemon is the same process, answers ping and status, its open fds
(/proc/PID/fd) come back to what they were before, no reload ran that nobody asked for,
and the site still serves.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from supervisor.control import server, wire
from supervisor.daemon import commands
from testkit.fuzzing import control_frames, control_messages, examples
from testkit.stackdir import cleaned_up, make_stack_dir
from testkit.watched import WatchedDaemon

#: what fuzzing may never ask for: a stop, or a reload or rollback that passes its checks
_ACTING = {"stop": commands.Stop, "reload": commands.Reload, "rollback": commands.Rollback}


def _harmless(message: dict[str, Any]) -> bool:
    cmd = message.get("cmd")
    command = _ACTING.get(cmd) if isinstance(cmd, str) else None
    args = message.get("args", {})
    return command is None or not isinstance(args, dict) or bool(
        commands.bad_args(command, args)  # type: ignore[arg-type]
    )


_MESSAGES = control_messages(
    ["status", "ping", "reload", "rollback", "stop", "reopen-logs", "nope", ""],
    ["nginx", "app", "force_nginx", "no_wait", "reason", "trigger", "x"],
).filter(_harmless)


def _exchange(path: str, payload: bytes, timeout: float = 30) -> list[dict[str, Any]]:
    """Send, half-close, read every frame until the daemon closes."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        with contextlib.suppress(BrokenPipeError):  # closed after a frame it refused
            sock.sendall(payload)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
        data = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                data += chunk
    frames = []
    while len(data) >= 4:
        (length,) = struct.unpack(">I", data[:4])
        frames.append(json.loads(data[4 : 4 + length]))
        data = data[4 + length :]
    assert data == b"", "a torn answer"
    return frames


def _one_error(frames: list[dict[str, Any]]) -> str:
    assert len(frames) == 1 and frames[0]["ok"] is False, frames
    error = str(frames[0]["error"])
    assert "internal error" not in error and "\n" not in error, error
    return error


@pytest.fixture(scope="module")
def daemon() -> Iterator[WatchedDaemon]:
    stack = make_stack_dir()
    with cleaned_up([stack]):
        stack.start()
        yield WatchedDaemon(stack)


def test_wrong_args_unknown_commands_huge_and_truncated_frames(daemon: WatchedDaemon) -> None:
    path = daemon.sock
    with daemon.batch("crafted frames"):
        wrong = {"cmd": "reload", "args": {"nginx": "yes", "no_wait": [1]}}
        assert _one_error(_exchange(path, wire.encode(wrong))) == (
            'reload: nginx must be true or false, not a string ("yes")'
        )
        assert _one_error(_exchange(path, wire.encode({"cmd": "rollback", "args": {
            "reason": ["x"]}}))).startswith("rollback: reason must be a string")
        assert _one_error(_exchange(path, wire.encode({"cmd": "stop", "args": {"now": 1}})))
        assert "unknown command 'xxxx" in _one_error(
            _exchange(path, wire.encode({"cmd": "x" * (wire.MAX_FRAME - 40)}))
        )
        assert "exceeds" in _one_error(_exchange(path, struct.pack(">I", wire.MAX_FRAME + 1)))
        assert "bad JSON" in _one_error(
            _exchange(path, struct.pack(">I", wire.MAX_FRAME) + b"\xff" * wire.MAX_FRAME)
        )
        assert "nested too deeply" in _one_error(
            _exchange(path, struct.pack(">I", 200_000) + b"[" * 200_000)
        )
        assert _one_error(_exchange(path, struct.pack(">I", 100) + b"{}")) == "truncated frame"
        assert _one_error(_exchange(path, b"\x00\x00")) == "truncated frame header"


def test_random_frames(daemon: WatchedDaemon) -> None:
    @settings(max_examples=examples(60), deadline=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(payload=control_frames(_MESSAGES))
    def one_client(payload: bytes) -> None:
        for frame in _exchange(daemon.sock, payload):
            assert set(frame) in ({"ok", "result"}, {"ok", "error"}), frame
            assert "internal error" not in str(frame.get("error")), frame
        assert daemon.call("ping")["pid"] == daemon.pid

    with daemon.batch("random frames"):
        one_client()


def _hold(path: str, payload: bytes, close_at_once: bool, out: list[bytes]) -> Callable[[], None]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(server.READ_TIMEOUT + 20)
    sock.connect(path)
    if payload:
        sock.sendall(payload)
    if close_at_once:  # gone before the answer: the daemon writes to nobody
        sock.close()
        return lambda: None

    def read() -> None:
        data = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                data += chunk
        out.append(data)
        sock.close()

    thread = threading.Thread(target=read)
    thread.start()
    return lambda: thread.join(server.READ_TIMEOUT + 30)


def test_ninety_clients_at_once_that_never_send_send_half_or_leave(daemon: WatchedDaemon) -> None:
    """Past MAX_CLIENTS, clients are told busy; the rest are let go after READ_TIMEOUT."""
    status = wire.encode({"cmd": "status", "args": {}})
    answers: list[bytes] = []
    holders = server.MAX_CLIENTS + 6
    with daemon.batch("90 clients at once"):
        started = time.monotonic()
        joins = [_hold(daemon.sock, b"", False, answers) for _ in range(holders // 2)]
        joins += [_hold(daemon.sock, status[: 4 + i % 9], False, answers)
                  for i in range(holders - holders // 2)]
        joins += [_hold(daemon.sock, status, True, answers) for _ in range(90 - holders)]
        time.sleep(1)
        print(f"\nwhile held: daemon fds {daemon.fds()}")
        for join in joins:
            join()
        took = time.monotonic() - started
    errors = [json.loads(data[4:])["error"] for data in answers]
    assert len(errors) == holders
    busy = [e for e in errors if e.startswith("busy")]
    timed_out = [e for e in errors if e == f"no whole request within {server.READ_TIMEOUT:g} s"]
    print(f"{len(busy)} told busy, {len(timed_out)} let go after {server.READ_TIMEOUT:g} s, "
          f"in {took:.1f} s")
    assert len(busy) + len(timed_out) == holders, errors
    assert busy and len(timed_out) <= server.MAX_CLIENTS
    assert took < server.READ_TIMEOUT + 15, f"the silent clients were held {took:.1f} s"


_TEXT = st.one_of(
    st.text(max_size=50), st.sampled_from(["\udcff", "\ud800x", "\x00", "a\nb", "é" * 3000]),
)


def test_reloads_with_any_reason_and_trigger(daemon: WatchedDaemon) -> None:
    """The texts a reload carries end up in fnud's log, the history and status."""

    @settings(max_examples=examples(3), deadline=None,
              suppress_health_check=[HealthCheck.too_slow])
    @example(reason="\udcff", trigger="\ud800")
    @given(reason=_TEXT, trigger=_TEXT)
    def one_reload(reason: str, trigger: str) -> None:
        result = daemon.call("reload", {"reason": reason, "trigger": trigger}, timeout=120)
        assert result["result"] == "ok", result
        last = daemon.call("status")["last_reload"]
        assert (last["reason"], last["trigger"]) == (reason or "fnud reload", trigger or "cli")

    with daemon.batch("reloads with any reason", reloads=True):
        one_reload()
    assert "crashed" not in daemon.stack.daemon_log()
