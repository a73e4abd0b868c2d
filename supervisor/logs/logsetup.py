"""structlog configuration: human on a TTY, logfmt otherwise, journald-aware."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, TextIO

import structlog

# syslog priorities, understood by journald as a "<N>" line prefix (SyslogLevelPrefix=yes)
#: level names fnud accepts (logging.getLevelNamesMapping() needs Python 3.11)
_LEVELS = {
    "debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
    "warn": logging.WARNING, "error": logging.ERROR, "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}
_PRIORITY = {"debug": 7, "info": 6, "warning": 4, "error": 3, "critical": 2, "exception": 3}


def _journal_prefix(_: Any, method: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
    level = str(event.get("level", method))
    message = str(event.get("event", "")).replace("\n", "\\n")  # one journal entry per event
    event["event"] = f"<{_PRIORITY.get(level, 6)}>{message}"
    return event


def _quote(text: str) -> str:
    if text and not any(c in text for c in ' "=\\\n'):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _logfmt(_: Any, __: str, event: MutableMapping[str, Any]) -> str:
    head = str(event.pop("event", ""))
    parts = [f"{key}={_quote(str(value))}" for key, value in event.items()]
    first = head if head.startswith("<") else f"msg={_quote(head)}"
    return " ".join([first, *parts])


def _to_journal(out: TextIO, stream: str | None) -> bool:
    """systemd's rule: JOURNAL_STREAM=dev:ino names the journal socket; our stream goes
    there only if it is that very file (a detached daemon writing fnud.log is not)."""
    if not stream:
        return False
    try:
        info = os.fstat(out.fileno())
    except (OSError, ValueError, AttributeError):
        return True  # not a real file (a test's StringIO): trust the variable
    return stream == f"{info.st_dev}:{info.st_ino}"


def configure(
    stream: TextIO | None = None, level: str = "info", environ: Mapping[str, str] | None = None
) -> None:
    """Pick the renderer from where the output goes.

    * a TTY: coloured console lines with a timestamp;
    * journald (``JOURNAL_STREAM`` set): ``<prio>message key=value``, no timestamp
      (the journal has its own);
    * otherwise: logfmt with an ISO timestamp.

    ``environ`` defaults to ``os.environ``.
    """
    out = stream or sys.stderr
    journald = _to_journal(out, (os.environ if environ is None else environ).get("JOURNAL_STREAM"))
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
    ]
    if out.isatty() and not journald:
        processors += [
            structlog.processors.TimeStamper(fmt="%H:%M:%S"),
            structlog.dev.ConsoleRenderer(),
        ]
    elif journald:
        processors += [_journal_prefix, _logfmt]
    else:
        processors += [structlog.processors.TimeStamper(fmt="iso", key="ts"), _logfmt]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(
            _LEVELS.get(level.lower(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )


def get(name: str) -> Any:
    return structlog.get_logger(name).bind(component=name)
