"""Whether a new generation that took over must be rolled back (its settle verdict).

Pure: the caller gathers what was seen since the switch and acts on the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass


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
        return "its master exited"
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
