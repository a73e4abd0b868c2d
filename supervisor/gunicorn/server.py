"""gunicorn as fnud knows it without a generation (appserver.port.AppServer): its names,
and how a master a dead daemon left is recognised and stopped."""

from __future__ import annotations

import contextlib
import os
import signal

from supervisor.runtime.paths import Paths

NAME = "gunicorn"
DISPLAY = "gunicorn"
CONF_SUFFIX = ".conf.py"  # a generation's rendered config: run/gunicorn-N.conf.py


class GunicornServer:
    name = NAME
    display = DISPLAY
    # a worker whose master died: SIGTERM ends its accept loop after the request it has
    orphan_signal: int = signal.SIGTERM
    stray_signal: int = signal.SIGQUIT  # quick shutdown: parked workers do not wait it out

    def mark(self, paths: Paths) -> str:
        return paths.rendered_prefix(NAME)  # every master is started with -c run/gunicorn-N

    def stop_survivor(self, paths: Paths, generation: int, pid: int) -> None:
        """SIGTERM: gunicorn's graceful stop (its workers finish what they have)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
