"""nginx's reload, carried out and confirmed: SIGHUP to the master, then new worker PIDs
(success) or an ``[emerg]``/``[alert]`` line in its log (nginx kept its old
configuration). The exit code of ``nginx -s reload`` proves nothing, so fnud never uses
it. The gate (``nginx -t``) runs before this is called."""

from __future__ import annotations

import asyncio
import os
import time

from supervisor.common.progress import Emit
from supervisor.nginx.driver import RELOAD, NginxDriver, worker_pids
from supervisor.process.program import Program

POLL = 0.05


class NginxReloadFailed(Exception):
    """nginx kept its old configuration or workers (one line, with nginx's reason)."""


async def reload(prog: Program[NginxDriver], emit: Emit, timeout: float) -> None:
    """Reload the running master of ``prog``; raises NginxReloadFailed."""
    old = worker_pids(prog.pid)
    mark = prog.lines_seen
    await emit("nginx: sending reload")
    os.kill(prog.pid, RELOAD)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fresh = worker_pids(prog.pid) - old
        if fresh:
            await emit(f"nginx: new workers {sorted(fresh)}")
            return
        for line in prog.lines_since(mark):
            if "[emerg]" in line or "[alert]" in line:
                raise NginxReloadFailed(f"nginx kept its old configuration: {line}")
        if not prog.running:
            raise NginxReloadFailed(
                f"nginx {prog.state.value} during reload: {prog.last_exit or prog.why}"
            )
        await asyncio.sleep(POLL)
    raise NginxReloadFailed(
        f"nginx kept its old workers {sorted(old)} for {timeout:g}s after reload"
    )
