"""Pure decisions: what happens after a program exits.

No clock, no process, no signal here: the caller passes what happened and when, and
carries out the returned decision. Tested with plain values (tests/test_policy.py).
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


@dataclass(frozen=True)
class SettleFacts:
    """What was seen of a new generation since it took over (during the settle)."""

    master_alive: bool
    worker_deaths: int  # respawns counted from its stats socket
    probe_failures: int  # health probes failed in a row
    requests: int  # answers seen in its request log
    errors: int  # of which 5xx


@dataclass(frozen=True)
class SettleLimits:
    max_error_ratio: float = 0.05
    max_worker_deaths: int = 3  # a crash loop, not one worker hitting max-requests
    max_probe_failures: int = 2
    min_requests: int = 20  # below this the ratio says nothing


def settle_verdict(facts: SettleFacts, limits: SettleLimits) -> str:
    """Why the new generation must be rolled back ('' while it looks fine)."""
    if not facts.master_alive:
        return "its uWSGI master exited"
    if facts.worker_deaths >= limits.max_worker_deaths:
        return f"{facts.worker_deaths} worker deaths (crash loop)"
    if facts.probe_failures >= limits.max_probe_failures:
        return f"{facts.probe_failures} health probes failed in a row"
    if facts.requests >= limits.min_requests:
        ratio = facts.errors / facts.requests
        if ratio > limits.max_error_ratio:
            return (
                f"{facts.errors} of {facts.requests} answers were 5xx "
                f"({ratio:.0%} > {limits.max_error_ratio:.0%})"
            )
    return ""
