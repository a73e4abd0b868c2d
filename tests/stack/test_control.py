"""The control socket refuses other users (a probe client runs as nobody)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.unit.test_control import _serve


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_peer_credentials_refuse_other_users(tmp_path: Path) -> None:
    """Even if the socket were reachable (here: 0666 in an open dir), uid is checked."""
    directory = Path(tempfile.mkdtemp(prefix="fnud-ctl-"))  # short: a unix socket's path
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

    try:
        asyncio.run(_serve(path, body))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    assert "permission denied" in outputs[0], outputs
