"""Prometheus metrics, served from the daemon's own loop when ``[metrics] listen`` is set.

Values are read at scrape time from the daemon (states, counters) and from what the
app server tells of its workers (requests, exceptions) plus psutil (RSS); only the
reload duration histogram is kept here, fed by the reloader. The per-worker families
carry the app server's program name (``fnud_uwsgi_worker_requests``,
``fnud_gunicorn_worker_requests``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from supervisor.appserver.port import WorkersUnknown
from supervisor.appserver.workers import Stats
from supervisor.logs import logsetup
from supervisor.process.group import rss
from supervisor.process.program import Program
from supervisor.process.states import State
from supervisor.web.close import finish

MAX_CLIENTS = 16  # scrapers at once; more get 429 and the socket closed
IO_TIMEOUT = 5.0  # seconds for a request head to arrive and for the answer to leave
RELOAD_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)


@dataclass(frozen=True)
class Source:
    """What the collector reads from the daemon, at scrape time."""

    programs: Callable[[], dict[str, Program[Any]]]
    reload_counts: Callable[[], dict[str, int]]
    probe_failures: Callable[[], int]
    generation: Callable[[], tuple[int, bool]]  # (serving generation, one kept warm)
    workers: Callable[[], Awaitable[Stats]]  # the serving generation's (WorkersUnknown)
    server: str = "app"  # the app server's program name, in the per-worker families


@dataclass
class Snapshot:
    stats: Stats | None = None


@dataclass(eq=False)  # the registry keys collectors by identity
class StackCollector(Collector):
    source: Source
    snapshot: Snapshot = field(default_factory=Snapshot)

    def collect(self) -> Iterator[Metric]:
        programs = self.source.programs()
        up = GaugeMetricFamily(
            "fnud_program_up", "1 when the program is RUNNING", labels=["program"]
        )
        state = GaugeMetricFamily(
            "fnud_program_state", "1 for the program's current state", labels=["program", "state"]
        )
        restarts = CounterMetricFamily(
            "fnud_program_restarts", "restarts after crashes and probe failures",
            labels=["program"],
        )
        probe_restarts = CounterMetricFamily(
            "fnud_program_probe_restarts", "restarts ordered by the health probe",
            labels=["program"],
        )
        for name, prog in programs.items():
            up.add_metric([name], 1.0 if prog.state is State.RUNNING else 0.0)
            for each in State:
                state.add_metric([name, each.value], 1.0 if prog.state is each else 0.0)
            restarts.add_metric([name], prog.restarts)
            probe_restarts.add_metric([name], prog.probe_restarts)
        yield from (up, state, restarts, probe_restarts)

        reloads = CounterMetricFamily("fnud_reloads", "reloads by result", labels=["result"])
        for result, count in self.source.reload_counts().items():
            reloads.add_metric([result], count)
        yield reloads
        yield CounterMetricFamily(
            "fnud_probe_failures", "failed health probes", value=self.source.probe_failures()
        )
        number, settling = self.source.generation()
        yield GaugeMetricFamily(
            "fnud_generation", "the serving app server generation", value=number
        )
        yield GaugeMetricFamily(
            "fnud_settling", "1 while the previous generation is kept warm", value=settling
        )

        stats = self.snapshot.stats
        if stats is not None:
            yield from self._workers(stats)

    def _workers(self, stats: Stats) -> Iterator[Metric]:
        """The serving generation's workers, in families named for the app server."""
        prefix = f"fnud_{self.source.server}"
        requests = CounterMetricFamily(
            f"{prefix}_worker_requests", "requests served by the worker", labels=["worker"]
        )
        exceptions = CounterMetricFamily(
            f"{prefix}_worker_exceptions", "exceptions in the worker", labels=["worker"]
        )
        memory = GaugeMetricFamily(
            f"{prefix}_worker_rss_bytes", "resident memory of the worker", labels=["worker"]
        )
        for worker in stats.live_workers:
            label = [str(worker.id)]
            requests.add_metric(label, worker.requests)
            exceptions.add_metric(label, worker.exceptions)
            memory.add_metric(label, rss(worker.pid))
        queue = GaugeMetricFamily(
            f"{prefix}_listen_queue", "connections waiting in the app server's listen queue",
            value=stats.listen_queue,
        )
        yield from (requests, exceptions, memory, queue)


class MetricsServer:
    """A tiny HTTP server in the daemon's loop: any GET returns the exposition."""

    def __init__(self, source: Source) -> None:
        self.registry = CollectorRegistry()
        self.collector = StackCollector(source)
        self.registry.register(self.collector)
        self.reload_duration = Histogram(
            "fnud_reload_duration_seconds", "duration of gated reloads", ["result"],
            buckets=RELOAD_BUCKETS, registry=self.registry,
        )
        self.server: asyncio.AbstractServer | None = None
        self.clients = 0
        self.log = logsetup.get("metrics")

    def observe_reload(self, result: str, seconds: float) -> None:
        self.reload_duration.labels(result=result).observe(seconds)

    async def start(self, host: str, port: int) -> None:
        self.server = await asyncio.start_server(self._client, host, port)
        self.log.info("serving metrics", listen=f"{host}:{port}")

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 1.0)

    async def render(self) -> bytes:
        try:
            self.collector.snapshot.stats = await self.collector.source.workers()
        except WorkersUnknown:
            self.collector.snapshot.stats = None
        return generate_latest(self.registry)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.clients >= MAX_CLIENTS:
            writer.write(answer("429 Too Many Requests", b"too many scrapers at once\n"))
            writer.close()
            return
        self.clients += 1
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IO_TIMEOUT)
            if not head.startswith(b"GET "):
                writer.write(answer("405 Method Not Allowed", b"only GET\n"))
            else:
                writer.write(answer("200 OK", await self.render()))
            await asyncio.wait_for(writer.drain(), IO_TIMEOUT)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError, asyncio.CancelledError):
            pass
        finally:
            self.clients -= 1
            finish(writer)


def answer(status: str, body: bytes) -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body
    )
