"""The detached daemon's own log file, reopenable after rotation.

The daemon opens the file itself (rather than inheriting it from ``fnud start``) and
puts it on its stdout and stderr, so that a reopen swaps both at once, tracebacks
included.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supervisor.uwsgi.logpath import NotReopenable

if TYPE_CHECKING:  # the CLI imports this module: keep it light
    from supervisor.process.program import Program


class DaemonLog:
    def __init__(self, path: Path) -> None:
        self.path = path

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        try:
            os.dup2(fd, 1)
            os.dup2(fd, 2)
        finally:
            os.close(fd)

    reopen = open


async def reopen_all(
    daemon_log: DaemonLog | None, programs: Iterable[Program], log: Any
) -> dict[str, list[str]]:
    """fnud's own log, then every running program's (nginx USR1, uWSGI 'l'); what could
    not be reopened in its mode (uWSGI without log master) is listed with the reason."""
    done, skipped = [], []
    if daemon_log is not None:
        daemon_log.reopen()
        done.append(f"fnud -> {daemon_log.path}")
    for prog in programs:
        if not prog.running:
            continue
        try:
            await prog.driver.reopen_logs(prog.pid)
            done.append(f"{prog.name} -> {prog.log_path}")
        except NotReopenable as exc:
            skipped.append(f"{prog.name}: {exc}")
        except OSError as exc:
            log.warning("log reopen failed", program=prog.name, error=str(exc))
    log.info("logs reopened", files=done, not_reopened=skipped)
    return {"reopened": done, "not_reopened": skipped}
