"""A unix socket in a directory the app's user may write is bound by that user.

Root binding (and chmod/chown-ing by path) a socket in the app's directory would follow
whatever that user made of the path in between: a link to a directory of root's, or a
swap between bind() and chmod(). A short-lived helper, started as the app's user from
its exec (stdlib only, isolated), binds and listens there with that user's rights and
hands the listening socket back over a socketpair (SCM_RIGHTS); fnud checks what it got
is a listening unix stream socket at that path, and holds it like any other.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from supervisor.common.runas import RunAs, popen_as

BIND = r"""
import os, socket, stat, sys
path, mode, group = sys.argv[1], int(sys.argv[2]), sys.argv[3]
backlog, fd = int(sys.argv[4]), int(sys.argv[5])
try:
    if stat.S_ISSOCK(os.lstat(path).st_mode):
        os.unlink(path)
except FileNotFoundError:
    pass
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.bind(path)
if mode >= 0:
    os.chmod(path, mode)
if group:
    os.chown(path, -1, int(group))
sock.listen(backlog)
socket.send_fds(socket.socket(fileno=fd), [b"1"], [sock.fileno()])
"""
TIMEOUT = 10.0


def interpreters() -> list[str]:
    """Pythons the helper may run on: fnud's own (the real binary, not a venv's link,
    which may live where the app's user cannot reach), else Debian's."""
    return list(dict.fromkeys([os.path.realpath(sys.executable), "/usr/bin/python3"]))


def bind_as(
    path: str, mode: int, group: int | None, backlog: int, run_as: RunAs
) -> socket.socket:
    """A listening socket at ``path``, bound by ``run_as``; OSError naming why not."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        errors = []
        for python in interpreters():
            argv = [python, "-I", "-S", "-c", BIND, path, str(mode),
                    "" if group is None else str(group), str(backlog), str(theirs.fileno())]
            try:
                result = subprocess.run(
                    argv, pass_fds=(theirs.fileno(),), capture_output=True, text=True,
                    timeout=TIMEOUT, cwd="/", env={}, stdin=subprocess.DEVNULL,
                    **popen_as(run_as),
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                errors.append(f"{python}: {exc}")
                continue
            if result.returncode == 0:
                return _received(ours, path)
            lines = result.stderr.strip().splitlines() or [f"exit code {result.returncode}"]
            raise OSError(0, f"as {run_as.name}: {lines[-1]}")
        raise OSError(0, f"as {run_as.name}: no python to bind with ({'; '.join(errors)})")
    finally:
        ours.close()
        theirs.close()


def _received(ours: socket.socket, path: str) -> socket.socket:
    ours.settimeout(TIMEOUT)
    _, fds, _, _ = socket.recv_fds(ours, 16, 1)
    if not fds:
        raise OSError(0, "the helper sent no socket")
    sock = socket.socket(fileno=fds[0])
    ok = (
        sock.family == socket.AF_UNIX and sock.type == socket.SOCK_STREAM
        and sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        and sock.getsockname() == path
    )
    if not ok:
        sock.close()
        raise OSError(0, "the helper sent something else than a listening socket there")
    sock.set_inheritable(False)
    return sock
