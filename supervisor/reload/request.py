"""A reload as asked for, and as it ended.

Outcomes: "ok"; "refused" (a check failed before anything was signalled); "failed"
(something was signalled and did not complete: the old processes serve); "rolled_back"
(a new generation served, failed its settle, the previous one serves again).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

OK, REFUSED, FAILED, ROLLED_BACK = "ok", "refused", "failed", "rolled_back"
OUTCOMES = (OK, REFUSED, FAILED, ROLLED_BACK)


@dataclass(frozen=True)
class ReloadRequest:
    nginx: bool = True
    app: bool = True
    force_nginx: bool = False  # reload nginx even when its files did not change
    reason: str = ""
    trigger: str = ""  # cli, systemd, sighup, save, touch, web (merged: "save+touch")
    rollback: bool = False  # back to the previous release instead (fnud rollback)

    def triggers(self) -> list[str]:
        return [t for t in self.trigger.split("+") if t]

    def merged(self, other: ReloadRequest) -> ReloadRequest:
        """One request doing what both ask for (a rollback never merges)."""
        assert not (self.rollback or other.rollback), "a rollback never merges"
        return ReloadRequest(
            nginx=self.nginx or other.nginx,
            app=self.app or other.app,
            force_nginx=self.force_nginx or other.force_nginx,
            reason=f"{self.reason}; {other.reason}",
            trigger="+".join(dict.fromkeys([*self.triggers(), *other.triggers()])),
        )


@dataclass(frozen=True)
class ReloadResult:
    result: str  # one of OUTCOMES
    message: str
    reason: str = ""
    at: float = 0.0  # wall clock of its start
    duration: float = 0.0
    workers_replaced: int = 0
    nginx_reloaded: bool = False
    trigger: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "result": self.result,
            "message": self.message,
            "reason": self.reason,
            "at": self.at,
            "duration": round(self.duration, 3),
            "workers_replaced": self.workers_replaced,
            "nginx_reloaded": self.nginx_reloaded,
            "trigger": self.trigger,
        }


class Refused(Exception):
    """A check failed before anything was signalled."""


class Failed(Exception):
    """Something was signalled and did not complete; the old processes serve."""


class RolledBack(Exception):
    """The new generation served and failed; the previous one serves again."""


def outcome_of(exc: BaseException) -> str | None:
    """The outcome an exception raised during a reload stands for; None for one that
    is not a reload's verdict (a bug: the caller logs it and reports "failed")."""
    if isinstance(exc, Refused):
        return REFUSED
    if isinstance(exc, RolledBack):
        return ROLLED_BACK
    if isinstance(exc, Failed):
        return FAILED
    return None
