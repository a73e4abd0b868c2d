"""From one host to many: the Ansible role and playbooks on a fleet of network namespaces
(deploy/testbed/fleet): two app hosts behind a balancer, load from the root namespace.

Two are enough for every claim here: a roll goes host by host, a failure at the first host
leaves the other untouched, a drained or killed host leaves one that serves. Each host
costs every playbook run (and the fleet's setup) its own work on this machine's CPUs;
`make bench` rolls a fleet of three.

One fleet for the whole module (making it costs a minute or two); the tests run in file
order and each leaves the fleet in the state the next one expects.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit import fleetbed
from testkit.load import Load, LoadResult
from testkit.stackdir import wait_for

_WHY = fleetbed.unavailable()
pytestmark = [
    pytest.mark.skipif(bool(_WHY), reason=_WHY or "fleet available"),
    pytest.mark.timeout(900),
]

HOSTS = 2
# each host's `fnud reload` returns after its settle window (the role's default is 10 s);
# these tests watch the roll, not the settle (tests/stack/test_generations.py does)
SETTLE = 2.0
V1 = "Hello from fnud"  # what site.yml's first release (example/) says


@pytest.fixture(scope="module")
def fleet() -> Iterator[fleetbed.Fleet]:
    made = fleetbed.Fleet.create(HOSTS, settle=SETTLE)
    keep = bool(os.environ.get("FNUD_FLEET_KEEP"))  # hosts' logs stay for a look
    try:
        yield made
    finally:
        made.down(keep=keep)
        if not keep:
            subprocess.run(["rm", "-rf", str(made.state)], check=False)


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("releases")


def load(fleet: fleetbed.Fleet) -> Load:
    return Load(fleet.balancer, concurrency=2, max_seconds=600, timeout=30,
                namespace_hosts=fleet.addresses)


# Measured here before 42aa7a3 (held sockets were blocking: a worker thread stuck in accept()
# stalled the whole worker): a few requests (2-7 of 8,000-57,000 per test) hung until the
# client gave up after 30 s, with and without a reload. Should that come back, client
# timeouts alone are an xfail that says so; any error status, reset or refused connection
# still fails.
HANGS = "requests hung 30 s (held sockets, issue 16; fixed in 42aa7a3?)"


def check_load(result: LoadResult) -> None:
    """0 failed requests; client timeouts alone are the known hang above (xfail)."""
    assert result.requests > 0
    non_2xx = sum(n for status, n in result.statuses.items() if not 200 <= status < 300)
    if result.failures and not non_2xx and set(result.errors) == {"TimeoutError"}:
        pytest.xfail(f"{HANGS}: {result.summary()}")
    assert result.failures == 0, result.summary()


def every_host_serves(fleet: fleetbed.Fleet, text: str) -> dict[str, str]:
    answers = {host: fleet.serves(host) for host in fleet.hosts or {}}
    assert all(text in body for body in answers.values()), answers
    return answers


def failure_of(result: subprocess.CompletedProcess[str], host: str) -> str:
    """The playbook's one-line verdict for ``host`` ('HOST: reason'), unwrapped."""
    text = " ".join(result.stdout.split())
    match = re.search(rf"msg: '({re.escape(host)}: [^']*)'", text)
    return match.group(1) if match else ""


def test_fleet_is_up_and_site_is_idempotent(fleet: fleetbed.Fleet) -> None:
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert fleet.hosts is not None and len(fleet.hosts) == HOSTS
    for host in fleet.hosts:
        assert host in namespaces  # inventory names are the namespaces' names
    assert V1 in fleetbed.get(fleet.balancer)[1]
    every_host_serves(fleet, V1)
    # a second run changes nothing on any host (molecule's idempotence check)
    again = fleet.playbook("site.yml")
    assert again.returncode == 0, again.stdout[-3000:]
    recap = fleetbed.play_recap(again.stdout)
    assert set(recap) == {f"{fleet.name}-lb", *fleet.hosts}, again.stdout[-3000:]
    not_idle = {
        host: counts for host, counts in recap.items()
        if (counts["changed"], counts["failed"], counts["unreachable"]) != (0, 0, 0)
    }
    assert not not_idle, (not_idle, fleetbed.changed_tasks(again.stdout))


def test_site_with_a_config_fnud_refuses_fails_naming_the_reason(fleet: fleetbed.Fleet) -> None:
    balancer = f"{fleet.name}-lb"
    broken = fleet.playbook(
        "site.yml", "--limit", balancer, "-e", "fnud_upstream_fail_timeout=bogus"
    )
    assert broken.returncode != 0
    line = failure_of(broken, balancer)
    assert "reload refused: nginx -t failed" in line, broken.stdout[-3000:]
    assert "fail_timeout=bogus" in line
    assert V1 in fleetbed.get(fleet.balancer)[1]  # the old config kept serving
    fixed = fleet.playbook("site.yml", "--limit", balancer)
    assert fixed.returncode == 0, fixed.stdout[-3000:]
    assert V1 in fleetbed.get(fleet.balancer)[1]


def test_missing_nginx_is_installed_with_apt(fleet: fleetbed.Fleet, tmp_path: Path) -> None:
    """With fnud_manage_packages, a host without nginx gets nginx-light through the apt module.
    The hosts share this machine's packages: it must have nginx-light already, so apt finds
    nothing to do and changes nothing."""
    installed = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", "nginx-light"], capture_output=True, text=True
    ).stdout
    if "install ok installed" not in installed:
        pytest.skip("nginx-light is not installed here: apt would install it for real")
    app = next(iter(fleet.hosts or {}))
    book = tmp_path / "nginx.yml"
    book.write_text(json.dumps([{  # JSON is YAML
        "name": "The role's nginx tasks", "hosts": app, "gather_facts": False,
        "tasks": [{"name": "Nginx", "ansible.builtin.include_role": {
            "name": "fnud", "tasks_from": "nginx.yml",
        }}],
    }]))
    result = fleet.playbook(
        str(book), "-e", "fnud_manage_packages=true", "-e", f"fnud_nginx_binary={tmp_path}/nginx"
    )
    assert result.returncode == 0, result.stdout[-3000:]
    apt = re.search(r"TASK \[fnud : Install nginx-light [^\n]*\n(\w+): \[", result.stdout)
    assert apt and apt.group(1) == "ok", result.stdout[-3000:]
    assert fleetbed.play_recap(result.stdout)[app]["changed"] == 0, result.stdout[-3000:]


def test_good_release_rolls_under_load(fleet: fleetbed.Fleet, releases: Path) -> None:
    good = fleetbed.make_release(releases, "v2", "Hello v2")
    with load(fleet) as traffic:
        traffic.wait_requests(20)
        result = fleet.playbook("deploy.yml", "-e", f"fnud_release_src={good}")
        traffic.wait_requests(20)
    assert result.returncode == 0, result.stdout[-3000:]
    every_host_serves(fleet, "Hello v2")
    assert traffic.result.bodies[b"Hello v2\n"] > 0
    check_load(traffic.result)


@pytest.mark.parametrize(("mutate", "reasons"), [
    ("syntax", ("reload refused: app does not load",)),
    # (fnud's gate runs the smoke check itself now; the playbook's own follows a reload)
    ("smoke", ("smoke check GET /health answered 500",)),
])
def test_bad_release_stops_at_the_first_host(
    fleet: fleetbed.Fleet, releases: Path, mutate: str, reasons: tuple[str, ...]
) -> None:
    bad = fleetbed.make_release(releases, f"bad-{mutate}", "Hello bad", mutate)
    hosts = list(fleet.hosts or {})
    before = {host: (fleet.releases(host), fleet.current(host)) for host in hosts}
    with load(fleet) as traffic:
        traffic.wait_requests(20)
        result = fleet.playbook("deploy.yml", "-e", f"fnud_release_src={bad}")
        traffic.wait_requests(20)
    assert result.returncode != 0
    line = failure_of(result, hosts[0])
    assert any(r in line for r in reasons), result.stdout[-3000:]
    every_host_serves(fleet, "Hello v2")
    after = {host: (fleet.releases(host), fleet.current(host)) for host in hosts}
    assert after == before  # the failed release is gone; the others were never touched
    check_load(traffic.result)


def test_release_without_app_file_is_refused_before_any_copy(
    fleet: fleetbed.Fleet, releases: Path
) -> None:
    empty = releases / "no-app"
    empty.mkdir()
    (empty / "README").write_text("no app here\n")
    hosts = list(fleet.hosts or {})
    before = {host: fleet.releases(host) for host in hosts}
    result = fleet.playbook("deploy.yml", "-e", f"fnud_release_src={empty}")
    assert result.returncode != 0
    assert "has no app.py: nothing was copied" in result.stdout, result.stdout[-2000:]
    assert {host: fleet.releases(host) for host in hosts} == before


def test_rollback_goes_back_one_release(fleet: fleetbed.Fleet) -> None:
    with load(fleet) as traffic:
        traffic.wait_requests(20)
        result = fleet.playbook("rollback.yml", "-e", f"fnud_serial={HOSTS}")  # all at once
        traffic.wait_requests(20)
    assert result.returncode == 0, result.stdout[-3000:]
    every_host_serves(fleet, V1)
    check_load(traffic.result)


def test_deploy_prunes_old_releases_but_never_the_current_one(fleet: fleetbed.Fleet) -> None:
    # after the rollback every host serves its first release (example/), the newer one is
    # still there: the same content again skips every host, and keeping none of the newest
    # removes all but the current one
    hosts = list(fleet.hosts or {})
    current = {host: fleet.current(host) for host in hosts}
    assert all(len(fleet.releases(host)) == 2 for host in hosts)
    result = fleet.playbook(
        "deploy.yml", "-e", f"fnud_release_src={fleetbed.EXAMPLE_APP.parent}",
        "-e", "fnud_keep_releases=0",
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert {host: fleet.current(host) for host in hosts} == current
    assert {host: fleet.releases(host) for host in hosts} == {
        host: [Path(current[host]).name] for host in hosts
    }
    every_host_serves(fleet, V1)


def test_drain_and_undrain_under_load(fleet: fleetbed.Fleet) -> None:
    host = next(iter(fleet.hosts or {}))
    pids = fleet.namespace_pids(host)

    def answered_by_host() -> bool:
        status, body = fleetbed.get(fleet.balancer, "/pid")
        return status == 200 and int(body.split(":")[1].strip(" }\n")) in pids

    with load(fleet) as traffic:
        traffic.wait_requests(20)
        drained = fleet.playbook("drain.yml", "-e", f"host={host}")
        assert drained.returncode == 0, drained.stdout[-3000:]
        pids = fleet.namespace_pids(host)
        assert not any(answered_by_host() for _ in range(30))
        undrained = fleet.playbook("undrain.yml", "-e", f"host={host}")
        assert undrained.returncode == 0, undrained.stdout[-3000:]
        pids = fleet.namespace_pids(host)
        wait_for(answered_by_host, timeout=30, message=f"{host} back in the balancer")
        traffic.wait_requests(20)
    result = traffic.result
    non_2xx = sum(n for status, n in result.statuses.items() if not 200 <= status < 300)
    assert non_2xx == 0, result.summary()
    # new connection per request: no keep-alive race with the balancer's retiring workers
    assert sum(result.errors.values()) <= 4, result.summary()


def test_app_host_killed_whole_costs_no_request(fleet: fleetbed.Fleet) -> None:
    victim = list(fleet.hosts or {})[-1]
    with load(fleet) as traffic:
        traffic.wait_requests(50)
        for _ in range(10):  # kill everything in the namespace (sshd, fnud, nginx, uWSGI)
            pids = fleet.namespace_pids(victim)
            if not pids:
                break
            subprocess.run(["kill", "-9", *map(str, pids)], check=False)
        assert not fleet.namespace_pids(victim)
        traffic.wait_requests(300)
    check_load(traffic.result)


def test_unreachable_host_changes_nothing(fleet: fleetbed.Fleet, releases: Path) -> None:
    # the previous test killed the last host's sshd with everything else there
    good = fleetbed.make_release(releases, "v3", "Hello v3")
    hosts = list(fleet.hosts or {})
    before = {host: fleet.releases(host) for host in hosts}
    result = fleet.playbook("deploy.yml", "-e", f"fnud_release_src={good}")
    assert result.returncode != 0
    assert "UNREACHABLE" in result.stdout, result.stdout[-3000:]
    assert {host: fleet.releases(host) for host in hosts} == before
    for host in hosts[:-1]:
        assert V1 in fleet.serves(host)


def test_fleet_down_leaves_nothing(fleet: fleetbed.Fleet) -> None:
    first = fleet.down()
    assert first.returncode == 0, first.stderr
    assert fleet.leftovers() == []
    again = fleet.down()  # twice is fine
    assert again.returncode == 0, again.stderr
