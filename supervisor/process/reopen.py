"""`fnud reopen-logs`: fnud's own log, then every running program's."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from supervisor.logs.logfile import DaemonLog
from supervisor.process.program import NotReopenable, Program


async def reopen_all(
    daemon_log: DaemonLog | None, programs: Iterable[Program[Any]], log: Any
) -> dict[str, list[str]]:
    """fnud's own log, then every running program's (each as its driver says); what cannot
    be reopened in its mode is listed with the reason."""
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
