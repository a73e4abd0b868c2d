"""uWSGI's own reload of a running master: a chain reload ('c': one worker after the
other, each replaced only when the new one accepts), or a graceful reload ('r') when the
ini changed. Tracked worker by worker from the stats socket until every worker is new."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from supervisor.appserver.workers import Stats
from supervisor.common.progress import Emit
from supervisor.uwsgi.fifo import CHAIN_RELOAD, GRACEFUL_RELOAD, write_fifo
from supervisor.uwsgi.stats import ChainProgress, read_stats

POLL = 0.1


class ChainError(Exception):
    """The reload did not complete (one line naming what is stuck)."""


async def _stats(path: Path) -> Stats | None:
    try:
        return await read_stats(path, timeout=1.0)
    except (OSError, ValueError, asyncio.TimeoutError):
        return None


async def reload(
    fifo: Path, stats_path: Path, alive: Callable[[], str], emit: Emit, timeout: float,
    changed: bool,
) -> tuple[int, str]:
    """(workers replaced, how); raises ChainError. ``alive()`` says why the master is
    gone ('' while it runs)."""
    letter, how = (
        (GRACEFUL_RELOAD, "graceful reload: the uWSGI ini changed") if changed
        else (CHAIN_RELOAD, "chain reload")
    )
    before = await _stats(stats_path)
    if before is None:
        raise ChainError("uWSGI stats socket unreachable")
    progress = ChainProgress.begin(before)
    old_by_id = {w.id: w.pid for w in before.live_workers}
    total = len(progress.old_pids)
    await emit(f"uwsgi: {how} of {total} workers")
    await write_fifo(fifo, letter)
    deadline = time.monotonic() + timeout
    stats: Stats | None = before
    while True:
        gone = alive()
        if gone:
            raise ChainError(f"uWSGI {gone}")
        stats = await _stats(stats_path)
        if stats is not None:
            for worker in progress.newly_replaced(stats):
                await emit(
                    f"uwsgi worker {worker.id}: pid {old_by_id.get(worker.id, '?')} -> "
                    f"{worker.pid} ({len(progress.reported)}/{total})"
                )
            if progress.done(stats):
                return len(stats.live_workers), how.split(":")[0]
        if time.monotonic() > deadline:
            stuck = progress.stuck(stats) if stats is not None else []
            names = ", ".join(f"worker {w.id} (pid {w.pid}, {w.status})" for w in stuck)
            raise ChainError(
                f"uWSGI reload incomplete after {timeout:g}s: "
                f"{names or 'stats socket unreachable'}"
            )
        await asyncio.sleep(POLL)
