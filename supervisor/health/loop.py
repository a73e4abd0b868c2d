"""The periodic health probe: after N failures in a row, restart the culprit.

It probes only while the daemon runs, every program is RUNNING and no reload or
restart holds the lock; a reload that began during a probe voids its result.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from supervisor.config.schema import HealthSection
from supervisor.health import probe as healthprobe
from supervisor.logs import logsetup
from supervisor.process.program import Program

Restart = Callable[[Program, str], Awaitable[None]]


class ProbeLoop:
    def __init__(
        self,
        health: Callable[[], HealthSection],  # the config in force (a reload may change it)
        allowed: Callable[[], bool],
        programs: Callable[[], dict[str, Program]],
        lock: asyncio.Lock,
        restart: Restart,
        stats: Callable[[], Path],  # the serving generation's stats socket
    ) -> None:
        self.health = health
        self.allowed = allowed
        self.programs = programs
        self.lock = lock
        self.restart = restart
        self.stats = stats
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
        result = await healthprobe.probe(cfg.url, cfg.timeout, self.stats())
        if not self.allowed():
            self.failures = 0  # a reload began while we probed: its effects don't count
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
        # (balancer mode has no uWSGI: a 502 there is the app hosts', nothing to restart)
        culprit = self.programs().get(result.culprit or "")
        if self.failures >= cfg.failures and culprit is not None:
            self.failures = 0
            async with self.lock:
                await self.restart(culprit, f"health probe: {result.reason}")
