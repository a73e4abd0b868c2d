"""Ending a paused uWSGI generation's workers once they only wait out their pause.

uWSGI suspends a worker thread after its request in ``poll(NULL, 0, 10000)`` and looks
at the pause flag again only when that poll ends (core/utils.c). Only a worker's main
thread can be woken early: uWSGI's other threads block every signal (core/loop.c). So
a generation stopped gracefully after a pause waited up to 10 s for those threads to be
joined (a retire took the whole stop_timeout and ended in SIGKILL), and the master's
stats socket no longer answers once it is stopping.

Read from /proc instead: a worker whose every thread sleeps in that poll, or (its main
thread) waits in ``pthread_join`` for a sibling (a futex wait on the sibling's TID), has
no request in flight and can take none (the graceful stop ended its accept loop): fnud
ends it with SIGKILL. Anything else (a thread in a request, an architecture whose
syscall numbers are not listed here, /proc not readable) is left to uWSGI and the stop's
own deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import signal
import time

from supervisor.process.group import child_pids

#: machine -> (poll-like syscalls, futex)
_SYSCALLS = {"x86_64": ({7, 271}, 202), "aarch64": ({73}, 98)}
AFTER = 0.3  # the graceful stop has reached every worker
EVERY, FOR = 0.1, 12.0  # a suspended thread's poll lasts 10 s at most


def _thread_calls(pid: int) -> dict[int, list[str]] | None:
    """{tid: fields of /proc/PID/task/TID/syscall}; None if any is unreadable."""
    calls: dict[int, list[str]] = {}
    try:
        for name in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{name}/syscall", encoding="ascii") as f:
                calls[int(name)] = f.read().split()
    except (OSError, ValueError):
        return None
    return calls


def only_paused(
    pid: int, calls: dict[int, list[str]] | None = None, machine: str | None = None
) -> bool:
    """True when every thread of worker ``pid`` sleeps out a pause or joins a sibling.

    ``calls``: {tid: /proc syscall fields} (default: read now); ``machine``: as
    platform.machine() says."""
    known = _SYSCALLS.get(machine or platform.machine())
    if calls is None:
        calls = _thread_calls(pid)
    if known is None or not calls:
        return False
    polls, futex = known
    asleep = 0
    for tid, fields in calls.items():
        try:
            number, args = int(fields[0]), [int(a, 16) for a in fields[1:4]]
        except (IndexError, ValueError):  # "running", or not in a syscall
            return False
        if number in polls and args[0] == 0 and args[1] == 0:
            asleep += 1
        elif not (tid == pid and number == futex and args[2] in calls and args[2] != pid):
            return False
    return asleep > 0


async def reap_paused_workers(master: int) -> None:
    """After a graceful stop of a generation that was paused: SIGKILL each worker of
    ``master`` that only waits out its pause."""
    await asyncio.sleep(AFTER)
    deadline = time.monotonic() + FOR
    while time.monotonic() < deadline:
        workers = child_pids(master)
        if not workers:
            return
        for worker in workers:
            if only_paused(worker):
                with contextlib.suppress(OSError):
                    os.kill(worker, signal.SIGKILL)
        await asyncio.sleep(EVERY)
