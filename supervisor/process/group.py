"""A master's process group: its members, its children, killing it, their memory."""

from __future__ import annotations

import contextlib
import os
import signal

import psutil


def group_members(pgid: int) -> list[psutil.Process]:
    members = []
    for proc in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error, OSError):
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc)
    return members


def child_pids(pid: int) -> set[int]:
    """The children of ``pid``: from /proc/PID/task/*/children (one read per thread),
    else from psutil (which scans every process)."""
    found: set[int] = set()
    try:
        for task in os.scandir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task.name}/children") as listing:
                found.update(int(child) for child in listing.read().split())
        return found
    except (OSError, ValueError):
        pass
    try:
        return {child.pid for child in psutil.Process(pid).children()}
    except (psutil.Error, ValueError):
        return set()


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> bool:
    """Signal a whole process group; False when it is already empty."""
    if pgid <= 0:  # never 0 (our own group) or -1 (everything)
        return False
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def rss(pid: int) -> int:
    """Resident memory of ``pid`` in bytes (0 when it is gone or hidden)."""
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except psutil.Error:
        return 0
