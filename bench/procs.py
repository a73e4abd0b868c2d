"""Processes the bench starts: each in its own session, every one gone at the end.

Every child is started with ``start_new_session=True``, so its pid is also its process
group id and the whole group (a master and its workers, even orphaned ones) can be
signalled at once. ``Processes.close`` stops whatever is still alive: the polite signal
first, then SIGKILL to the group after a deadline.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psutil

from testkit.stackfiles import processes_under


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def group_alive(pgid: int) -> bool:
    """True while any process (zombies included) is left in the process group."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group_members(pgid: int) -> list[psutil.Process]:
    """Live (non-zombie) processes of process group ``pgid``."""
    members = []
    for proc in psutil.process_iter(["status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(proc.pid) == pgid:
                members.append(proc)
        except (psutil.Error, ProcessLookupError):
            continue
    return members


def signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    stop_signal: int

    @property
    def pid(self) -> int:
        return self.proc.pid


class Processes:
    """A registry of the children the bench started; ``close`` ends them all."""

    def __init__(self) -> None:
        self.children: list[Child] = []

    def spawn(
        self,
        name: str,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        log: Path | None = None,
        stdout: int | None = None,
        env: dict[str, str] | None = None,
        stop_signal: int = signal.SIGTERM,
    ) -> Child:
        """Start ``argv`` in a new session; output goes to ``log`` (or ``stdout``)."""
        out: IO[bytes] | int
        if log is not None:
            out = open(log, "ab")  # noqa: SIM115 - handed to the child, closed below
        else:
            out = stdout if stdout is not None else subprocess.DEVNULL
        try:
            proc = subprocess.Popen(
                list(argv), cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT if out != subprocess.DEVNULL else subprocess.DEVNULL,
                env=env, start_new_session=True,
            )
        finally:
            if not isinstance(out, int):
                out.close()
        child = Child(name, proc, stop_signal)
        self.children.append(child)
        return child

    def stop(self, child: Child, timeout: float = 15.0) -> None:
        """Polite stop signal to the leader, then SIGKILL to the group after ``timeout``."""
        if child.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                child.proc.send_signal(child.stop_signal)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            child.proc.poll()
            if not group_alive(child.pid):
                break
            time.sleep(0.05)
        else:
            signal_group(child.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.proc.wait(5)
        # orphaned members (workers that outlived their master) still carry the pgid
        if group_alive(child.pid):
            signal_group(child.pid, signal.SIGKILL)
        if child in self.children:
            self.children.remove(child)

    def close(self) -> None:
        for child in reversed(list(self.children)):
            self.stop(child)


def kill_under(roots: Sequence[Path]) -> list[str]:
    """SIGKILL the process groups of whatever still runs under ``roots``; describe them."""
    described = []
    for proc in processes_under(roots):
        try:
            described.append(f"{proc.pid} {' '.join(proc.cmdline())[:100]}")
            pgid = os.getpgid(proc.pid)
        except (psutil.Error, ProcessLookupError):
            continue
        if pgid != os.getpgid(0):
            signal_group(pgid, signal.SIGKILL)
        with contextlib.suppress(psutil.Error):
            proc.kill()
    return described


def foreign_stack_processes(roots: Sequence[Path]) -> int:
    """nginx/uWSGI/pytest processes on the machine that the bench did not start (noise)."""
    ours = {p.pid for p in processes_under(roots)}
    count = 0
    for proc in psutil.process_iter(["name", "cmdline"]):
        name = proc.info["name"] or ""
        cmdline = " ".join(proc.info["cmdline"] or [])
        if proc.pid not in ours and (
            name in ("nginx", "uwsgi") or "pytest" in cmdline or "gunicorn" in cmdline
        ):
            count += 1
    return count
