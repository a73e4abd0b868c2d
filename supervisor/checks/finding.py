"""One problem found by ``fnud check``: where, how bad, what, and how to fix it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from supervisor.common.text import one_line

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    """``path:line: severity: message (hint)``; ``line`` 0 means the file as a whole."""

    path: str
    line: int
    severity: Severity
    message: str
    hint: str = ""

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}" if self.line > 0 else self.path

    def format(self) -> str:
        text = f"{self.where}: {self.severity}: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return one_line(text)


def error(path: object, line: int, message: str, hint: str = "") -> Finding:
    return Finding(str(path), line, "error", message, hint)


def warning(path: object, line: int, message: str, hint: str = "") -> Finding:
    return Finding(str(path), line, "warning", message, hint)


def summary(findings: Iterable[Finding]) -> str:
    """``2 errors, 1 warning``; ``no problems found`` when there is nothing."""
    found = list(findings)
    errors = sum(1 for f in found if f.is_error)
    warnings = len(found) - errors
    parts = []
    if errors:
        parts.append(f"{errors} error{'s' if errors != 1 else ''}")
    if warnings:
        parts.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
    return ", ".join(parts) or "no problems found"
