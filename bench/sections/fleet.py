"""The fleet test bed (3 app hosts behind fnud's balancer, network namespaces)."""

from __future__ import annotations

import subprocess
import time

from bench.context import Bench
from bench.report import Table, ms, secs
from testkit import fleetbed
from testkit.load import Load, LoadResult

HOSTS = 3
NAME = "fbench"


def fleet(bench: Bench) -> list[Table]:
    """A rolling deploy of a new release to 3 app hosts (deploy.yml, one host at a time:
    copy, `fnud reload`, smoke check) under load through the balancer: the playbook's wall
    time and the failed requests of how many; then one app host killed whole (SIGKILL to
    every process in its namespace) under the same load: failed requests. Load: paced
    Python clients, a new connection per request, GET / through the balancer. Needs root
    (network namespaces); skipped otherwise. `fleet up` itself (wheelhouse cached) is
    timed too."""
    why = fleetbed.unavailable()
    if why:
        return [Table("fleet: skipped", ["reason"], [[why]])]
    began = time.monotonic()
    made = fleetbed.Fleet.create(HOSTS, name=NAME)
    up_seconds = time.monotonic() - began
    try:
        release = fleetbed.make_release(bench.new_dir("fleet"), "v2", "Hello v2")
        clients = bench.settings.light_clients
        with _load(made, clients) as traffic:
            traffic.wait_requests(50)
            began = time.monotonic()
            deployed = made.playbook("deploy.yml", "-e", f"fnud_release_src={release}")
            wall = time.monotonic() - began
            traffic.wait_requests(50)
        roll = traffic.result
        victim = list(made.hosts or {})[-1]
        with _load(made, clients) as traffic:
            traffic.wait_requests(100)
            before = traffic.result.requests
            killed = time.monotonic()
            _kill_namespace(made, victim)
            traffic.wait_requests(1000, timeout=120)
            after_kill = traffic.result.requests - before
            kill_window = time.monotonic() - killed
        loss = traffic.result
    finally:
        made.down()
    table = Table(
        f"fleet: {HOSTS} app hosts + balancer (namespaces), {clients} clients",
        ["what", "wall time", "requests", "failed", "p50", "max latency"],
    )
    table.rows.append(["fleet up + site.yml", secs(up_seconds), None, None, None, None])
    table.rows.append([
        f"rolling deploy (exit {deployed.returncode})", secs(wall), roll.requests,
        roll.failures, *_latency(roll),
    ])
    table.rows.append([
        f"host {victim} killed whole", secs(kill_window), after_kill, loss.failures,
        *_latency(loss),
    ])
    table.notes.append(f"deploy: {roll.summary()}")
    table.notes.append(f"host loss: {loss.summary()}")
    if deployed.returncode != 0:
        bench.problems.append(f"fleet: deploy.yml exit {deployed.returncode}")
    return [table]


def _load(made: fleetbed.Fleet, clients: int) -> Load:
    return Load(made.balancer, concurrency=clients, max_seconds=900, timeout=30,
                namespace_hosts=made.addresses)


def _latency(result: LoadResult) -> list[str]:
    times = sorted(result.latencies)
    if not times:
        return ["-", "-"]
    return [ms(times[len(times) // 2]), ms(times[-1])]


def _kill_namespace(made: fleetbed.Fleet, host: str) -> None:
    for _ in range(10):
        pids = made.namespace_pids(host)
        if not pids:
            return
        subprocess.run(["kill", "-9", *map(str, pids)], check=False)
