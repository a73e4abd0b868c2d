"""Health probe: is the stack alive *and* answering? If not, who is to blame?

A request goes through nginx to the health URL; separately, the app server's worker
facts tell whether its workers are all busy or its listen queue is filling. nginx not
answering at all points at nginx; nginx answering 502/503/504, or a timeout while every
worker is busy, points at the app server. An application error (another 5xx) is
reported, not "fixed" by a restart.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from supervisor.appserver.port import WorkersUnknown
from supervisor.appserver.workers import Stats
from supervisor.health import httpget


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    culprit: str | None = None  # "nginx", "app" (the app server) or None
    reason: str = ""


def blame(
    status: int | None, error: httpget.HealthError | None, stats: Stats | None
) -> ProbeResult:
    """Pure decision from what the probe saw."""
    if status is not None:
        if 200 <= status < 400:
            return ProbeResult(True)
        if status in (502, 503, 504):
            why = f"nginx answered {status}: the app server is not serving"
            return ProbeResult(False, "app", why)
        return ProbeResult(False, None, f"the app answered HTTP {status}")
    assert error is not None
    wedged = stats is None or all(w.status == "busy" for w in stats.live_workers) or (
        stats.listen_queue > 0
    )
    if error.kind == "timeout" and wedged:
        detail = "stats unreachable" if stats is None else (
            f"{sum(w.status == 'busy' for w in stats.live_workers)}/{len(stats.live_workers)}"
            f" workers busy, listen queue {stats.listen_queue}"
        )
        return ProbeResult(False, "app", f"{error} ({detail})")
    return ProbeResult(False, "nginx", str(error))


Workers = Callable[[], Awaitable[Stats]]  # the serving generation's (raises WorkersUnknown)


async def probe(url: str, timeout: float, workers: Workers) -> ProbeResult:
    status: int | None = None
    error: httpget.HealthError | None = None
    try:
        status, _ = await httpget.http_get(url, timeout)
    except httpget.HealthError as exc:
        error = exc
    stats = None
    if status is None or status >= 500:
        try:
            stats = await workers()
        except WorkersUnknown:
            stats = None
    return blame(status, error, stats)
