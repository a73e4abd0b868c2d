"""The line fnud's logger class (hooks.py) writes for every answer: which worker
answered, with what status."""

from __future__ import annotations

import re

_ANSWER_RE = re.compile(r"^fnud-answer <(\d+)> (\d{3}) ")


def access_status(line: str) -> tuple[int, int] | None:
    """(worker pid, HTTP status) of one access log line; None for any other line."""
    match = _ANSWER_RE.match(line)
    return (int(match.group(1)), int(match.group(2))) if match else None


def is_access_line(line: str) -> bool:
    return line.startswith("fnud-answer ")
