"""uWSGI as fnud knows it without a generation (appserver.port.AppServer): its names,
and how a master a dead daemon left is recognised and stopped."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

from supervisor.runtime.paths import Paths
from supervisor.uwsgi.fifo import GRACEFUL_STOP, write_fifo

NAME = "uwsgi"
DISPLAY = "uWSGI"


def fifo_path(paths: Paths, number: int) -> Path:
    """Generation ``number``'s master fifo, in uWSGI's own corner of the runtime dir."""
    return paths.corner(NAME) / f"uwsgi-{number}.fifo"


class UwsgiServer:
    name = NAME
    display = DISPLAY
    orphan_signal: int = signal.SIGQUIT
    stray_signal: int = signal.SIGINT  # stops even a paused master at once

    def mark(self, paths: Paths) -> str:
        return paths.rendered_prefix(NAME)  # every generation's master names its ini

    def stop_survivor(self, paths: Paths, generation: int, pid: int) -> None:
        """'q' on its fifo; SIGINT when the fifo does not answer (uWSGI stops on it)."""
        try:
            asyncio.run(write_fifo(fifo_path(paths, generation), GRACEFUL_STOP, timeout=2.0))
        except OSError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGINT)
