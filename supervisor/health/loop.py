"""The periodic health probe: after N failures in a row, restart the culprit.

It probes only while ``allowed()`` (the daemon runs, every program is RUNNING, no other
operation is in progress); an operation that began during a probe voids its result.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from supervisor.config.schema import HealthSection
from supervisor.health.probe import Workers, probe
from supervisor.logs import logsetup
from supervisor.process.program import Program

#: restarts a culprit (taking the daemon's one-operation slot itself)
Restart = Callable[[Program[Any], str], Awaitable[None]]


class ProbeLoop:
    def __init__(
        self,
        health: Callable[[], HealthSection],  # the config in force (a reload may change it)
        allowed: Callable[[], bool],
        culprits: Callable[[], dict[str, Program[Any]]],  # {"app": ..., "nginx": ...}
        restart: Restart,
        workers: Workers,  # the serving generation's
    ) -> None:
        self.health = health
        self.allowed = allowed
        self.culprits = culprits
        self.restart = restart
        self.workers = workers
        self.failures = 0  # in a row
        self.total_failures = 0
        self.log = logsetup.get("probe")

    async def run(self) -> None:
        while True:
            cfg = self.health()
            await asyncio.sleep(cfg.interval or 1.0)
            if cfg.interval:
                await self.once(cfg)

    async def once(self, cfg: HealthSection) -> None:
        if not self.allowed():
            self.failures = 0
            return
        result = await probe(cfg.url, cfg.timeout, self.workers)
        if not self.allowed():
            self.failures = 0  # an operation began while we probed: its effects don't count
            return
        if result.ok:
            self.failures = 0
            return
        self.failures += 1
        self.total_failures += 1
        self.log.warning(
            "health probe failed", reason=result.reason, culprit=result.culprit,
            failures=self.failures, limit=cfg.failures,
        )
        # (balancer mode has no app server: a 502 there is the app hosts', nothing to restart)
        culprit = self.culprits().get(result.culprit or "")
        if self.failures >= cfg.failures and culprit is not None:
            self.failures = 0
            await self.restart(culprit, f"health probe: {result.reason}")
