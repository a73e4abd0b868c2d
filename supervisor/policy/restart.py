"""What happens after a program exits: restart now, back off, or give up (FATAL).

Pure: no clock, no process, no signal. The caller passes what happened and when, and
carries out the returned decision.
"""

from __future__ import annotations

from dataclasses import dataclass

from supervisor.config.schema import BackoffSection


@dataclass(frozen=True)
class ExitFacts:
    """What the policy needs to know about one exit."""

    started_at: float  # monotonic time of the spawn
    now: float  # monotonic time of the exit
    was_running: bool  # it had become RUNNING before it exited
    quick_failures: int  # quick failures counted before this exit


@dataclass(frozen=True)
class Restart:
    delay: float
    quick_failures: int


@dataclass(frozen=True)
class GiveUp:
    """FATAL; retry after ``cooldown`` seconds (0: never by itself)."""

    cooldown: float
    quick_failures: int


Decision = Restart | GiveUp


def after_exit(facts: ExitFacts, backoff: BackoffSection) -> Decision:
    """A first crash after a healthy run restarts at once (like supervisord); quick
    failures back off exponentially up to ``max``; too many in a row give up."""
    healthy_run = facts.was_running and facts.now - facts.started_at >= backoff.quick_seconds
    failures = 1 if healthy_run else facts.quick_failures + 1
    if failures >= backoff.quick_failures:
        return GiveUp(backoff.cooldown, failures)
    if healthy_run:
        return Restart(0.0, failures)
    delay = min(backoff.initial * 2 ** (failures - 1), backoff.max)
    return Restart(round(delay, 2), failures)
