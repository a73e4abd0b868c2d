"""The health probe: which program a failed probe blames."""

from __future__ import annotations

from supervisor.appserver.workers import Stats
from supervisor.health import httpget
from supervisor.health.probe import blame
from supervisor.uwsgi.stats import parse_stats


def _stats(busy: int, idle: int, queue: int = 0) -> Stats:
    workers = [{"id": i, "pid": 100 + i, "status": "busy", "accepting": 1, "apps": [{}]}
               for i in range(busy)]
    workers += [{"id": 50 + i, "pid": 200 + i, "status": "idle", "accepting": 1, "apps": [{}]}
                for i in range(idle)]
    return parse_stats({"pid": 1, "listen_queue": queue, "workers": workers})


def test_probe_blames_the_right_program() -> None:
    timeout = httpget.HealthError("no answer", "timeout")
    refused = httpget.HealthError("refused", "connect")
    assert blame(200, None, None).ok
    assert blame(502, None, None).culprit == "app"
    assert blame(504, None, _stats(0, 3)).culprit == "app"
    assert blame(500, None, _stats(0, 3)).culprit is None  # an app bug: no restart
    assert blame(None, timeout, _stats(3, 0)).culprit == "app"
    assert blame(None, timeout, _stats(1, 2, queue=5)).culprit == "app"
    assert blame(None, timeout, _stats(0, 3)).culprit == "nginx"
    assert blame(None, refused, _stats(0, 3)).culprit == "nginx"
