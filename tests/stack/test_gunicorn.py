"""gunicorn as the app server on the real stack: the same gate, generations, settle,
rollback, adoption and held socket as uWSGI, through the same code paths."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from testkit.load import Load, LoadResult
from testkit.stackdir import WATCH_TOML, StackDir, wait_for

#: a release whose workers die a second after they loaded it (not in the preflight)
CRASH_UNDER_GUNICORN = """
import os as _os, sys as _sys, threading as _threading
if "gunicorn.arbiter" in _sys.modules:  # in a gunicorn worker, not in fnud's preflight
    _threading.Timer(1.0, _os._exit, (1,)).start()
"""
WORKER_CLASSES = [pytest.param(1, id="sync"), pytest.param(4, id="gthread")]


def events(stack: StackDir, number: int) -> list[dict[str, object]]:
    path = stack.run / "gunicorn" / f"gunicorn-{number}.events"
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def parked(stack: StackDir, number: int) -> set[int]:
    out: set[int] = set()
    for event in events(stack, number):
        pid = int(event["pid"])  # type: ignore[call-overload]
        if event["ev"] == "parked":
            out.add(pid)
        elif event["ev"] == "unparked":
            out.discard(pid)
    return out


def answers_by(result: LoadResult, pids: set[int]) -> int:
    """Answers of /pid given by the workers ``pids``."""
    return sum(n for text, n in result.bodies.items() if json.loads(text)["pid"] in pids)


def test_gunicorn_starts_serves_reports_its_workers_and_stops(
    gunicorn_factory: Callable[..., StackDir],
) -> None:
    stack = gunicorn_factory(extra_conf='accesslog = "access.log"  # the user\'s own')
    check = stack.fnud("check")
    assert check.returncode == 0 and "no problems found" in check.stdout, check.stdout
    stack.start()
    assert stack.body() == b"Hello from fnud\n"
    status = stack.status()
    assert status["app"] == {"program": "gunicorn", "display": "gunicorn"}
    workers = stack.programs()["gunicorn"]["workers"]
    assert len(workers) == 3 and all(w["status"] == "ready" and w["rss"] > 0 for w in workers)
    for _ in range(9):
        stack.body("/pid")
    wait_for(lambda: sum(w["requests"] for w in stack.programs()["gunicorn"]["workers"]) >= 9,
             message="the answers counted (from gunicorn's access log, by worker pid)")
    own = stack.root / "app" / "access.log"  # relative to chdir, as gunicorn has it
    wait_for(lambda: own.exists() and own.read_text().count('"GET /pid') >= 9,
             message="the user's own access log written as before")
    text = stack.fnud("status").stdout
    assert "gunicorn RUNNING" in text and "WORKER" in text, text
    log = (stack.log / "gunicorn.log").read_text()
    assert f"Listening at: http://127.0.0.1:{stack.app_port}" in log  # the held socket
    master = psutil.Process(stack.master_pid())
    environ = master.environ()  # as it was exec'd: sh exec'd gunicorn in its place
    assert (environ["LISTEN_PID"], environ["LISTEN_FDS"]) == (str(master.pid), "1")
    assert master.cmdline()[1:3] == ["-m", "gunicorn"] and "GUNICORN_CMD_ARGS" not in environ
    assert stack.fnud("stop").returncode == 0  # the fixture fails on any leftover
    assert stack.generation_files() == {}  # no rendered conf, events or control file left


@pytest.mark.parametrize("threads", WORKER_CLASSES)
def test_reload_under_load_switches_generations_without_a_failed_request(
    gunicorn_factory: Callable[..., StackDir], threads: int,
) -> None:
    stack = gunicorn_factory(threads=threads)
    stack.start()
    first = stack.master_pid()
    with Load(stack.url + "/", concurrency=8) as load:
        load.wait_requests(50)
        for number, text in ((2, "v2"), (3, "v3")):
            stack.set_greeting(text)
            result = stack.fnud("reload")
            assert result.returncode == 0, result.stdout + result.stderr
            assert f"generation {number}" in result.stdout and "paused (warm)" in result.stdout
            load.wait_requests(50)
        outcome = load.stop()
    assert outcome.failures == 0, outcome.summary()
    assert outcome.bodies[b"v3\n"] > 0 and stack.master_pid() != first
    assert not psutil.pid_exists(first)
    files = stack.generation_files()  # the retired generations left no files behind
    assert files and set(files.values()) == {3}, files


@pytest.mark.parametrize("threads", WORKER_CLASSES)
def test_a_paused_generation_takes_no_request_and_stalls_none(
    gunicorn_factory: Callable[..., StackDir], threads: int,
) -> None:
    """During the settle the previous generation is paused: from then on none of its
    workers answers, a request it had already taken is answered, nobody waits for it;
    `fnud rollback` resumes it (the same master, warm)."""
    stack = gunicorn_factory(threads=threads, settle=60.0)
    stack.start()
    first, old = stack.master_pid(), stack.worker_pids()
    with Load(stack.url + "/pid", concurrency=8) as load:
        load.wait_requests(50)
        flight = stack.request_in_flight(4)
        assert stack.fnud("reload", "--no-wait").returncode == 0
        wait_for(lambda: parked(stack, 1) == old, timeout=30, message="generation 1 parked")
        before = answers_by(load.result, old)
        load.wait_requests(400)
        during = answers_by(load.result, old) - before
        latencies = list(load.result.latencies)
        back = stack.fnud("rollback")
        assert back.returncode == 0, back.stdout + back.stderr
        load.wait_requests(100)
        outcome = load.stop()
    assert flight.result()[0] == 200  # taken before the pause, answered
    assert during == 0, "a paused worker answered"
    assert max(latencies) < 1.0, f"a request waited {max(latencies):.2f}s"
    assert outcome.failures == 0, outcome.summary()
    assert stack.master_pid() == first and parked(stack, 1) == set()  # resumed, warm
    assert answers_by(outcome, old) > before


def test_a_broken_release_is_refused_with_file_and_line(running_gunicorn: StackDir) -> None:
    stack = running_gunicorn
    source = stack.app.read_text()
    stack.app.write_text(source + "\ndef broken(:\n")
    line = source.count("\n") + 2
    result = stack.fnud("reload")
    assert result.returncode == 1
    assert f"{stack.app}:{line}: SyntaxError" in result.stderr, result.stderr
    assert stack.generation()["number"] == 1 and stack.body() == b"Hello from fnud\n"


def test_a_release_answering_500_on_the_health_path_is_refused(
    running_gunicorn: StackDir,
) -> None:
    stack = running_gunicorn
    stack.app.write_text(stack.app.read_text().replace(
        'return jsonify(status="ok", pid=os.getpid())', 'return jsonify(status="broken"), 500',
    ).replace('GREETING = "Hello from fnud"', 'GREETING = "never served"'))
    with Load(stack.url + "/", concurrency=4) as load:
        load.wait_requests(20)
        result = stack.fnud("reload")
        load.wait_requests(20)
        outcome = load.stop()
    assert result.returncode == 1
    assert "smoke check GET /health answered 500" in result.stderr, result.stderr
    assert stack.generation()["number"] == 1
    assert b"never served\n" not in outcome.bodies and outcome.failures == 0, outcome.summary()


def test_a_crash_looping_release_is_rolled_back(
    gunicorn_factory: Callable[..., StackDir],
) -> None:
    stack = gunicorn_factory(settle=20.0)
    stack.start()
    first = stack.master_pid()
    stack.app.write_text(stack.app.read_text() + CRASH_UNDER_GUNICORN)
    result = stack.fnud("reload")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "rolled_back" in result.stderr and "worker deaths" in result.stderr, result.stderr
    assert stack.generation()["number"] == 1 and stack.master_pid() == first
    assert stack.body() == b"Hello from fnud\n"


FAIL_UNDER_GUNICORN = """
import sys as _sys
if "gunicorn.arbiter" in _sys.modules:  # passes the preflight, fails users
    @app.before_request
    def _broken() -> object:
        from flask import request as _request
        return ("broken release\\n", 500) if _request.path == "/" else None
"""


def test_a_generation_answering_5xx_under_traffic_is_rolled_back(
    gunicorn_factory: Callable[..., StackDir],
) -> None:
    """The 5xx share during the settle, counted from fnud's answer line."""
    stack = gunicorn_factory(settle=30.0)
    stack.start()
    stack.app.write_text(stack.app.read_text() + FAIL_UNDER_GUNICORN)
    with Load(stack.url + "/", concurrency=4) as load:
        load.wait_requests(20)
        result = stack.fnud("reload")
        load.wait_requests(20)
        outcome = load.stop()
    assert result.returncode == 1, result.stdout + result.stderr
    assert "rolled_back" in result.stderr and "were 5xx" in result.stderr, result.stderr
    assert stack.generation()["number"] == 1 and stack.body() == b"Hello from fnud\n"
    assert outcome.statuses[500] < outcome.requests  # the old generation served the rest


def test_gunicorn_master_kill_costs_at_most_the_requests_in_flight(
    running_gunicorn: StackDir,
) -> None:
    failures, summary = kill_under_load(running_gunicorn, running_gunicorn.master_pid())
    assert failures <= 32, summary  # one per client at most: nothing was refused


def kill_under_load(stack: StackDir, pid: int, concurrency: int = 32) -> tuple[int, str]:
    with Load(stack.url + "/", concurrency=concurrency) as load:
        load.wait_requests(100)
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: stack.master_pid() != pid and stack.programs()["gunicorn"]["state"]
                 == "RUNNING", message="a new master running")
        load.wait_requests(100)
        outcome = load.stop()
    print(f"kill -9 of gunicorn's master under {concurrency} clients: {outcome.summary()}")
    return outcome.failures, outcome.summary()


def test_a_restarted_daemon_adopts_gunicorn_and_its_socket(running_gunicorn: StackDir) -> None:
    stack = running_gunicorn
    stack.set_greeting("v2")
    assert stack.fnud("reload").returncode == 0  # something to roll back to, afterwards
    master = stack.master_pid()
    daemon = int(stack.status()["daemon"]["pid"])  # type: ignore[index]
    os.kill(daemon, signal.SIGKILL)
    wait_for(lambda: not psutil.pid_exists(daemon), message="daemon gone")
    result = stack.start()
    assert "adopted" in result.stdout, result.stdout
    assert stack.master_pid() == master and stack.generation()["number"] == 2
    assert "held sockets not recovered" not in stack.daemon_log()
    assert len(stack.programs()["gunicorn"]["workers"]) == 3
    failures, summary = kill_under_load(stack, master)
    assert failures <= 32, summary
    back = stack.fnud("rollback")  # the adopted generation knew what it replaced
    assert back.returncode == 0, back.stdout + back.stderr
    assert stack.generation()["number"] == 3


def make_releases(stack: StackDir) -> tuple[Path, Path]:
    """root/releases/{r1,r2} with current -> releases/r1; [gunicorn] chdir is current."""
    releases = stack.root / "releases"
    r1, r2 = releases / "r1", releases / "r2"
    for release, text in ((r1, "release one"), (r2, "release two")):
        release.mkdir(parents=True)
        (release / "app.py").write_text(stack.app.read_text().replace("Hello from fnud", text))
    (stack.root / "current").symlink_to("releases/r1")
    stack.toml.write_text(stack.toml.read_text().replace('chdir = "app"', 'chdir = "current"'))
    return r1, r2


def switch(link: Path, target: str) -> None:
    tmp = link.with_name("current.tmp")
    tmp.symlink_to(target)
    os.replace(tmp, link)


def test_pinned_releases_a_symlink_switch_a_respawn_and_fnud_rollback(
    gunicorn_factory: Callable[..., StackDir],
) -> None:
    stack = gunicorn_factory()
    r1, r2 = make_releases(stack)
    stack.start()
    switch(stack.root / "current", "releases/r2")  # no reload yet: generation 1 stays on r1
    for pid in stack.worker_pids():
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: len(stack.worker_pids()) == 3, message="workers respawned")
    assert {stack.body() for _ in range(9)} == {b"release one\n"}
    with Load(stack.url + "/", concurrency=4) as load:
        load.wait_requests(20)
        assert stack.fnud("reload").returncode == 0
        assert stack.body() == b"release two\n" and stack.generation()["release"] == str(r2)
        back = stack.fnud("rollback")
        assert back.returncode == 0, back.stdout + back.stderr
        load.wait_requests(20)
        outcome = load.stop()
    assert stack.body() == b"release one\n" and stack.generation()["release"] == str(r1)
    assert os.readlink(stack.root / "current") == "releases/r1"
    assert outcome.failures == 0, outcome.summary()


def test_a_save_goes_through_the_gate_with_watch_on(
    gunicorn_factory: Callable[..., StackDir],
) -> None:
    stack = gunicorn_factory(extra_toml=WATCH_TOML)
    stack.start()

    def last() -> object:
        return (stack.status()["last_reload"] or {}).get("result")  # type: ignore[attr-defined]

    stack.set_greeting("saved")
    wait_for(lambda: last() == "ok", timeout=30, message="the save reloaded")
    assert stack.body() == b"saved\n"
    stack.app.write_text(stack.app.read_text() + "\ndef broken(:\n")
    wait_for(lambda: last() == "refused", timeout=30, message="the broken save refused")
    assert stack.body() == b"saved\n"


@pytest.fixture
def running_gunicorn(gunicorn_factory: Callable[..., StackDir]) -> StackDir:
    stack = gunicorn_factory()
    stack.start()
    return stack


def test_stop_without_a_daemon_stops_what_a_killed_one_left(
    running_gunicorn: StackDir,
) -> None:
    stack = running_gunicorn
    master = stack.master_pid()
    daemon = int(stack.status()["daemon"]["pid"])  # type: ignore[index]
    os.kill(daemon, signal.SIGKILL)
    wait_for(lambda: not psutil.pid_exists(daemon), message="daemon gone")
    began = time.monotonic()
    result = stack.fnud("stop")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not psutil.pid_exists(master) and time.monotonic() - began < 10


COLD_WORKER = '''"""A sync worker fnud does not know as one: no pause, cold rollbacks."""
from gunicorn.workers import base, sync

Worker = type("Worker", (base.Worker,), {
    name: value for name, value in vars(sync.SyncWorker).items() if not name.startswith("__")
})
'''


def test_workers_that_cannot_pause_settle_and_roll_back_cold(
    gunicorn_factory: Callable[..., StackDir],
) -> None:
    stack = gunicorn_factory(settle=30.0, extra_conf='worker_class = "coldworker.Worker"')
    _, r2 = make_releases(stack)
    for release in ("r1", "r2"):
        (stack.root / "releases" / release / "coldworker.py").write_text(COLD_WORKER)
    stack.start()
    with Load(stack.url + "/", concurrency=8) as load:
        load.wait_requests(50)
        switch(stack.root / "current", "releases/r2")
        reload = stack.fnud("reload", "--no-wait")
        assert reload.returncode == 0, reload.stdout + reload.stderr
        wait_for(lambda: stack.generation()["release"] == str(r2) and stack.body() ==
                 b"release two\n", message="generation 2 serving")
        wait_for(lambda: (stack.generation()["previous"] or {}).get("state") == "stopped",
                 message="the settle, generation 1 stopped")
        began = time.monotonic()
        back = stack.fnud("rollback")
        took = time.monotonic() - began
        assert back.returncode == 0, back.stdout + back.stderr
        load.wait_requests(50)
        outcome = load.stop()
    print(f"cold rollback (fnud rollback during the settle): {took:.2f}s; {outcome.summary()}")
    assert stack.generation()["number"] == 3 and stack.body() == b"release one\n"
    assert outcome.failures == 0, outcome.summary()


def test_under_systemd_only_fnud_notifies_and_gunicorn_gets_none_of_its_variables(
    running_gunicorn: StackDir,
) -> None:
    """`fnud start --foreground` as systemd runs it (Type=notify), with variables that
    would each change gunicorn: READY=1 comes from fnud alone, once the stack serves."""
    import subprocess
    import sys

    from tests.stack.test_systemd import Listener

    stack = running_gunicorn
    assert stack.fnud("stop").returncode == 0
    listener = Listener(str(stack.root / "notify.sock"), stack.url + "/")
    env = {**os.environ, "NOTIFY_SOCKET": listener.env_value, "WATCHDOG_USEC": "30000000",
           "GUNICORN_CMD_ARGS": "--workers 7 --daemon", "LISTEN_FDS": "2", "LISTEN_PID": "1"}
    env.pop("JOURNAL_STREAM", None)
    with open(stack.root / "foreground.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "supervisor", "-c", str(stack.toml), "start", "--foreground"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
        )
    try:
        ready = listener.wait("READY", proc)
        assert ready.serving and ready.pid == proc.pid
        assert len(stack.worker_pids()) == 3  # GUNICORN_CMD_ARGS did not reach it
        assert stack.fnud("reload").returncode == 0
        listener.wait("READY", proc, timeout=10.0)
        proc.send_signal(signal.SIGTERM)
        listener.wait("STOPPING", proc, timeout=30.0)
        assert proc.wait(timeout=60) == 0
        listener.drain()
        assert {m.pid for m in listener.messages} == {proc.pid}, "gunicorn notified systemd"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        listener.close()
