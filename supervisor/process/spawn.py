"""Starting one program's process: its own session, its held sockets, its user."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from typing import IO

from supervisor.common.runas import RunAs, in_dir, popen_as


@dataclass(frozen=True)
class Command:
    argv: list[str]
    cwd: str
    env: dict[str, str]
    pass_fds: tuple[int, ...] = ()  # held listening sockets, inherited at these numbers
    stdin: int | None = None  # a descriptor the child gets as fd 0 (None: /dev/null)
    run_as: RunAs | None = None  # the app's user, from the exec on (it enters cwd itself)


def start(cmd: Command, out: IO[bytes]) -> subprocess.Popen[bytes]:
    """Start ``cmd`` with stdout and stderr to ``out``, in a session of its own (its
    group can be killed). With ``run_as``, the identity is set before the exec and the
    program enters its directory as that user: root never enters it."""
    argv, cwd = cmd.argv, cmd.cwd
    if cmd.run_as is not None:
        argv, cwd = in_dir(cmd.argv, cmd.cwd), "/"
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL if cmd.stdin is None else cmd.stdin,
        stdout=out,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        env=cmd.env,
        start_new_session=True,
        pass_fds=cmd.pass_fds,
        **popen_as(cmd.run_as),
    )
