"""The control protocol and server, without the stack."""

from __future__ import annotations

import asyncio
import os
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from supervisor.control import server as control


def test_frames_round_trip() -> None:
    message = {"cmd": "status", "args": {"x": [1, "ü"]}}
    frame = control.encode(message)
    assert struct.unpack(">I", frame[:4])[0] == len(frame) - 4
    assert control.decode_body(frame[4:]) == message


def test_oversized_and_malformed_bodies_are_rejected() -> None:
    with pytest.raises(control.ProtocolError, match="exceeds"):
        control.encode({"blob": "x" * (control.MAX_FRAME + 1)})
    with pytest.raises(control.ProtocolError, match="bad JSON"):
        control.decode_body(b"{oops")
    with pytest.raises(control.ProtocolError, match="object"):
        control.decode_body(b"[1, 2]")


async def _serve(path: Path, body: Any) -> None:
    async def status(args: dict[str, Any], emit: control.Emit) -> Any:
        await emit("working")
        if args.get("fail"):
            raise control.CommandError("it went wrong")
        return {"echo": args}

    server = control.Server(path, {"status": status}, structlog.get_logger())
    await server.start()
    try:
        await body()
    finally:
        await server.close()


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="fnud-ctl-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def test_server_answers_with_progress_then_result(sock_dir: Path) -> None:
    path = sock_dir / "s.sock"
    progress: list[str] = []
    results: list[Any] = []

    async def body() -> None:
        assert (path.stat().st_mode & 0o777) == 0o600
        results.append(
            await asyncio.to_thread(
                control.call, path, "status", {"a": 1}, 5.0, progress.append
            )
        )
        with pytest.raises(control.ClientError, match="it went wrong"):
            await asyncio.to_thread(control.call, path, "status", {"fail": True}, 5.0)
        with pytest.raises(control.ClientError, match="unknown command"):
            await asyncio.to_thread(control.call, path, "nope", None, 5.0)

    asyncio.run(_serve(path, body))
    assert progress == ["working"]
    assert results == [{"echo": {"a": 1}}]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_peer_credentials_refuse_other_users(sock_dir: Path) -> None:
    """Even if the socket were reachable (here: 0666 in an open dir), uid is checked."""
    directory = sock_dir
    directory.chmod(0o755)
    path = directory / "s.sock"
    probe = (
        "import json, socket, struct, sys\n"
        "s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])\n"
        "body = json.dumps({'cmd': 'status', 'args': {}}).encode()\n"
        "s.sendall(struct.pack('>I', len(body)) + body)\n"
        "n = struct.unpack('>I', s.recv(4))[0]\n"
        "print(json.loads(s.recv(n)))\n"
    )
    outputs: list[str] = []

    async def body() -> None:
        path.chmod(0o666)
        result = await asyncio.to_thread(
            subprocess.run, ["/usr/bin/python3", "-c", probe, str(path)],
            capture_output=True, text=True, user=65534, group=65534, timeout=30, cwd="/",
        )
        outputs.append(result.stdout + result.stderr)

    asyncio.run(_serve(path, body))
    assert "permission denied" in outputs[0], outputs
