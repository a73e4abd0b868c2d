"""Operations: health probes, FATAL cool-down, log reopen, metrics, status table."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import urllib.request
from collections.abc import Callable, Iterator

import psutil
import pytest

from testkit.stackdir import EXAMPLE_APP, StackDir, wait_for


def test_wedged_uwsgi_is_restarted_by_the_probe(stack_factory: Callable[..., StackDir]) -> None:
    # the probe fails twice within ~3 s; the held requests are cut by the restart (after
    # stop_timeout) or answered once let go, and those still in the held socket's backlog
    # are then served by the new uWSGI: they are let go once the restart has begun
    stack = stack_factory(health="interval = 0.5\ntimeout = 1.0\nfailures = 2",
                          stop_timeout=3.0)
    stack.add_hold_route()
    stack.start()
    old_master = stack.programs()["uwsgi"]["pid"]

    def stuck() -> None:
        with contextlib.suppress(OSError):  # cut by the restart, as intended
            urllib.request.urlopen(stack.url + "/hold", timeout=60).read()

    threads = [threading.Thread(target=stuck) for _ in range(8)]  # 3 workers x 2 threads
    for thread in threads:
        thread.start()
    wait_for(
        lambda: stack.programs()["uwsgi"]["probe_restarts"] == 1, timeout=60,
        message="probe restart",
    )
    stack.release_held()
    wait_for(lambda: stack.serving(), timeout=30, message="serving again")
    # nginx can get an answer from the new master a moment before the daemon's readiness
    # poll marks it RUNNING: wait for that, then it must be the new master
    wait_for(lambda: stack.programs()["uwsgi"]["state"] == "RUNNING", timeout=30,
             message="uwsgi RUNNING again")
    assert stack.programs()["uwsgi"]["pid"] != old_master
    assert stack.programs()["nginx"]["probe_restarts"] == 0  # nginx was not blamed
    assert "health probe" in stack.daemon_log()
    for thread in threads:
        thread.join(timeout=90)


def test_fatal_program_recovers_after_cooldown_once_fixed(
    stack_factory: Callable[..., StackDir],
) -> None:
    stack = stack_factory(quick_failures=2, cooldown=2.0)
    stack.start()
    stack.app.write_text("raise SystemError('dependency down')\n")
    os.kill(stack.programs()["uwsgi"]["pid"], signal.SIGKILL)
    wait_for(lambda: stack.programs()["uwsgi"]["state"] == "FATAL", timeout=60, message="FATAL")
    stack.app.write_text(EXAMPLE_APP.read_text())  # the dependency comes back
    wait_for(lambda: stack.programs()["uwsgi"]["state"] == "RUNNING", timeout=60,
             message="retry after the cool-down")
    assert stack.serving()


def test_reopen_logs_after_rotation_creates_new_files_without_restarts(
    stack_factory: Callable[..., StackDir],
) -> None:
    """Rotation by rename: uWSGI reopens through its log master ([uwsgi] log_master;
    the default direct log is rotated with copytruncate, see test_footprint). A chain
    stack: a chain reload makes the running master log again."""
    stack = stack_factory(reload_mode="chain")
    toml = stack.toml.read_text()
    stack.toml.write_text(toml.replace("[uwsgi]\n", "[uwsgi]\nlog_master = true\n", 1))
    running = stack
    running.start()
    logs = running.root / "log"
    before = {name: prog["pid"] for name, prog in running.programs().items()}
    workers = {w["pid"] for w in running.programs()["uwsgi"]["workers"]}
    for name in ("fnud", "uwsgi", "nginx"):
        (logs / f"{name}.log").rename(logs / f"{name}.log.1")
    result = running.fnud("reopen-logs")
    assert result.returncode == 0, result.stderr
    for name in ("fnud", "uwsgi", "nginx"):
        wait_for(lambda name=name: (logs / f"{name}.log").exists(), message=f"new {name}.log")
    after = running.programs()
    assert {name: prog["pid"] for name, prog in after.items()} == before
    assert {w["pid"] for w in after["uwsgi"]["workers"]} == workers
    # new output lands in the new files, and fnud still relays uWSGI's lines
    assert running.fnud("reload", "--app").returncode == 0
    wait_for(lambda: "chain reload" in (logs / "uwsgi.log").read_text(), message="uwsgi.log")
    wait_for(
        lambda: "chain reload" in (logs / "fnud.log").read_text()
        and "program=uwsgi" in (logs / "fnud.log").read_text(),
        message="fnud.log relaying uWSGI",
    )
    shown = running.fnud("logs", "uwsgi", "-n", "5")
    assert shown.returncode == 0 and len(shown.stdout.splitlines()) == 5


def test_sigusr1_reopens_logs(running: StackDir) -> None:
    logs = running.root / "log"
    (logs / "nginx.log").rename(logs / "nginx.log.1")
    os.kill(running.status()["daemon"]["pid"], signal.SIGUSR1)  # type: ignore[index]
    wait_for(lambda: (logs / "nginx.log").exists(), message="nginx reopened its log")


def test_metrics_endpoint_parses_and_counters_move(stack_factory: Callable[..., StackDir]) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from testkit.stackdir import free_port

    port = free_port()
    stack = stack_factory(extra_toml=f'\n[metrics]\nlisten = "127.0.0.1:{port}"\n')
    stack.start()

    def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            text = response.read().decode()
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    before = scrape()
    assert before[("fnud_program_up", (("program", "uwsgi"),))] == 1.0
    assert before[("fnud_program_state", (("program", "nginx"), ("state", "RUNNING")))] == 1.0
    assert before[("fnud_reloads_total", (("result", "ok"),))] == 0.0
    assert ("fnud_uwsgi_worker_requests_total", (("worker", "1"),)) in before
    assert before[("fnud_uwsgi_worker_rss_bytes", (("worker", "1"),))] > 0
    assert stack.fnud("reload").returncode == 0
    after = scrape()
    assert after[("fnud_reloads_total", (("result", "ok"),))] == 1.0
    assert before[("fnud_generation", ())] == 1.0 and after[("fnud_generation", ())] == 2.0
    assert after[("fnud_settling", ())] == 0.0  # fnud reload returns after the settle
    assert after[("fnud_reload_duration_seconds_count", (("result", "ok"),))] == 1.0


def test_nginx_starts_only_once_uwsgi_accepts(stack: StackDir) -> None:
    slow = "import time\ntime.sleep(2)  # a slow import: uWSGI stays STARTING a while\n"
    source = stack.app.read_text()
    future = "from __future__ import annotations\n"
    stack.app.write_text(source.replace(future, future + slow, 1))
    seen: list[tuple[str, str, str]] = []
    starter = threading.Thread(target=stack.start)
    starter.start()
    try:
        while starter.is_alive():
            if (stack.run / "fnud.sock").exists():
                result = stack.fnud("status", "--json")
                progs = json.loads(result.stdout or "{}").get("programs")
                if progs:
                    seen.append(
                        (progs["uwsgi"]["state"], progs["nginx"]["state"], progs["uwsgi"]["why"])
                    )
    finally:
        starter.join(timeout=120)
    # while uWSGI was loading, nginx had not been started, and status said why
    loading = [s for s in seen if s[0] == "STARTING"]
    assert loading, seen
    assert all(nginx_state == "STOPPED" for _, nginx_state, _ in loading), loading
    assert any("workers loading the app" in why or "stats socket" in why
               for _, _, why in loading), loading
    log = stack.daemon_log()
    uwsgi_ready = log.index("program=uwsgi old=STARTING new=RUNNING")
    nginx_starting = log.index("program=nginx old=STOPPED new=STARTING")
    assert uwsgi_ready < nginx_starting


def test_hung_nginx_is_blamed_and_restarted_by_the_probe(
    stack_factory: Callable[..., StackDir],
) -> None:
    stack = stack_factory(health="interval = 0.5\ntimeout = 1.0\nfailures = 2")
    stack.start()
    master = stack.programs()["nginx"]["pid"]
    os.killpg(master, signal.SIGSTOP)  # alive but wedged: accepts nothing, answers nothing
    try:
        wait_for(
            lambda: stack.programs()["nginx"]["probe_restarts"] == 1, timeout=60,
            message="probe restart of nginx",
        )
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(master, signal.SIGCONT)
    wait_for(stack.serving, timeout=30, message="serving again")
    progs = stack.programs()
    assert progs["nginx"]["pid"] != master and progs["uwsgi"]["probe_restarts"] == 0


def _kill_daemon(stack: StackDir) -> None:
    daemon = stack.status()["daemon"]["pid"]  # type: ignore[index]
    os.kill(daemon, signal.SIGKILL)
    wait_for(lambda: not psutil.pid_exists(daemon)
             or psutil.Process(daemon).status() == psutil.STATUS_ZOMBIE, message="daemon gone")


@pytest.mark.parametrize("log_master", [False, True])
def test_reopen_logs_after_a_readoption(
    stack_factory: Callable[..., StackDir], log_master: bool
) -> None:
    """After a kill -9 of the daemon and `fnud start` (adoption), logrotate's postrotate
    still works: exit 0, every log fnud and the programs can reopen is reopened (uWSGI's
    own only through its log master; else copytruncate, and it says so)."""
    stack = stack_factory()
    toml = stack.toml.read_text()
    stack.toml.write_text(toml.replace(
        "[uwsgi]\n", f"[uwsgi]\nlog_master = {str(log_master).lower()}\n", 1
    ))
    stack.start()
    before = {name: prog["pid"] for name, prog in stack.programs().items()}
    _kill_daemon(stack)
    adopted = stack.fnud("start")
    assert adopted.returncode == 0 and "adopted" in adopted.stdout, adopted.stderr
    logs = stack.root / "log"
    rotated = ("fnud", "nginx", *(("uwsgi",) if log_master else ()))
    for name in rotated:
        (logs / f"{name}.log").rename(logs / f"{name}.log.1")
    result = stack.fnud("reopen-logs")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "internal error" not in result.stdout + result.stderr
    assert "reopened nginx" in result.stdout
    if log_master:
        assert "reopened uwsgi" in result.stdout
    else:
        assert "not reopened: uwsgi" in result.stdout and "copytruncate" in result.stdout
    for name in ("nginx", *(("uwsgi",) if log_master else ())):
        wait_for(lambda name=name: (logs / f"{name}.log").exists(), message=f"new {name}.log")
    assert {name: prog["pid"] for name, prog in stack.programs().items()} == before


@pytest.fixture
def small_log_disk(stack_factory: Callable[..., StackDir]) -> Iterator[StackDir]:
    """A stack whose log dir is a 4 MiB tmpfs of its own (root only)."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    stack = stack_factory()
    logs = stack.root / "log"
    logs.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "fnud-test-log",
                              str(logs)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield stack
    finally:
        stack.fnud("stop", timeout=60)
        subprocess.run(["umount", "-l", str(logs)], capture_output=True)


def _problems(stack: StackDir) -> list[str]:
    return list(stack.status().get("problems", []))  # type: ignore[call-overload]


def test_a_full_log_disk_is_said_and_the_stack_keeps_serving(small_log_disk: StackDir) -> None:
    stack = small_log_disk
    stack.start()
    assert _problems(stack) == []
    filler = stack.root / "log" / "filler"
    with open(filler, "wb") as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0" * 65536)
    problems = wait_for(lambda: _problems(stack), timeout=30, message="status to say so")
    assert any("is full" in p and str(stack.root / "log") in p for p in problems), problems  # type: ignore[union-attr]
    stack.set_greeting("Reloaded on a full disk")  # the daemon logs all along: it must not mind
    result = stack.fnud("reload", "--app")
    assert result.returncode == 0, result.stdout + result.stderr
    assert stack.serving()
    filler.unlink()
    wait_for(lambda: not _problems(stack), timeout=30, message="the problem to clear")
    stack.set_greeting("And after")
    assert stack.fnud("reload", "--app").returncode == 0
    wait_for(lambda: "log writes resumed" in stack.daemon_log(), timeout=30,
             message="the daemon's log to say how many lines were lost")
