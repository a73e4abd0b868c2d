"""uWSGI's master fifo: the letters fnud writes and how to write one safely."""

from __future__ import annotations

import asyncio
import errno
import os
import stat
import time
from pathlib import Path

from supervisor.common.trust import owned_like_its_dir

# master fifo letters (uWSGI docs, "The Master FIFO")
CHAIN_RELOAD = "c"
GRACEFUL_RELOAD = "r"
GRACEFUL_STOP = "q"
REOPEN_LOGS = "l"
PAUSE = "p"  # toggles: suspend the workers / resume them (reap.py: what it costs)


async def write_fifo(path: Path, letter: str, timeout: float = 5.0) -> None:
    """Write one command letter to the master fifo.

    The master recreates the fifo after each writer, so ENXIO (no reader yet) and
    ENOENT are retried until ``timeout``.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            # O_NOFOLLOW: the fifo's dir may belong to the workers' user; never write
            # through a link planted there
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
        except OSError as exc:
            if exc.errno not in (errno.ENXIO, errno.ENOENT) or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
            continue
        try:
            if not stat.S_ISFIFO(os.fstat(fd).st_mode) or not owned_like_its_dir(fd, path):
                raise OSError(errno.EINVAL, f"{path} is not the master's fifo")
            os.write(fd, letter.encode())
            return
        finally:
            os.close(fd)
