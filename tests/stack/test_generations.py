"""Generations on the real stack: fnud holds the sockets, a reload starts a new uWSGI
beside the old one, switches, settles and rolls back by itself."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psutil

from testkit.load import Load, LoadResult
from testkit.stackdir import StackDir, wait_for

CRASH_AFTER_LOAD = """
import os as _os, threading as _threading
import uwsgi as _uwsgi
if isinstance(getattr(_uwsgi, "version", None), bytes):  # the real uWSGI, not the preflight
    _threading.Timer(1.0, _os._exit, (3,)).start()
"""


def reload_under_load(stack: StackDir) -> tuple[subprocess.CompletedProcess[str], LoadResult]:
    """`fnud reload` while 4 clients keep asking for /; (the CLI's result, the load's)."""
    with Load(stack.url + "/", concurrency=4) as load:
        load.wait_requests(20)
        result = stack.fnud("reload")
        load.wait_requests(20)
        return result, load.stop()


def test_reload_switches_to_a_new_generation_under_load_without_a_failed_request(
    running: StackDir,
) -> None:
    first = running.master_pid()
    with Load(running.url + "/", concurrency=4) as load:
        load.wait_requests(30)
        for number, text in ((2, "v2"), (3, "v3")):
            running.set_greeting(text)
            result = running.fnud("reload")
            assert result.returncode == 0, result.stdout + result.stderr
            assert f"generation {number}" in result.stdout
            load.wait_requests(30)
            assert running.body() == f"{text}\n".encode()
        outcome = load.stop()
    assert outcome.failures == 0, outcome.summary()
    assert running.generation()["number"] == 3
    assert running.master_pid() != first
    assert not psutil.pid_exists(first)  # the old generation was stopped after its settle
    files = running.generation_files()  # and the retired ones left no files behind
    assert files and set(files.values()) == {3}, files


def test_status_shows_both_generations_during_the_settle(
    stack_factory: Callable[..., StackDir],
) -> None:
    stack = stack_factory(settle=30.0)
    stack.start()
    result = stack.fnud("reload", "--no-wait")
    assert result.returncode == 0, result.stdout + result.stderr
    gen = stack.generation()
    assert gen["number"] == 2 and gen["state"] == "settling"
    previous = gen["previous"]
    assert isinstance(previous, dict) and previous["number"] == 1 and previous["state"] == "paused"
    # a reload during the settle ends it early (keeping generation 2) and then runs
    again = stack.fnud("reload", "--no-wait")
    assert again.returncode == 0, again.stdout + again.stderr
    assert stack.generation()["number"] == 3


def test_ini_change_goes_through_a_new_generation(running: StackDir) -> None:
    running.ini.write_text(running.ini.read_text().replace("processes = 3", "processes = 4"))
    result, outcome = reload_under_load(running)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(running.worker_pids()) == 4
    assert outcome.failures == 0, outcome.summary()


def test_a_failing_smoke_check_refuses_the_release_before_any_user_sees_it(
    running: StackDir,
) -> None:
    source = running.app.read_text()
    running.app.write_text(source.replace(
        'return jsonify(status="ok", pid=os.getpid())',
        'return jsonify(status="broken"), 500',
    ).replace('GREETING = "Hello from fnud"', 'GREETING = "never served"'))
    result, outcome = reload_under_load(running)
    assert result.returncode == 1
    assert "refused" in result.stderr and "smoke check GET /health answered 500" in result.stderr
    assert running.generation()["number"] == 1
    assert b"never served" not in b"".join(outcome.bodies)
    assert outcome.failures == 0, outcome.summary()


def test_a_generation_that_crash_loops_is_rolled_back(
    stack_factory: Callable[..., StackDir],
) -> None:
    stack = stack_factory(settle=20.0)
    stack.start()
    stack.app.write_text(stack.app.read_text() + CRASH_AFTER_LOAD)
    result = stack.fnud("reload")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "rolled_back" in result.stderr
    last = stack.status()["last_reload"]
    assert last["result"] == "rolled_back"  # type: ignore[index]
    assert stack.status()["reloads"]["rolled_back"] == 1  # type: ignore[index]
    assert stack.generation()["number"] == 1  # the previous one serves again
    assert stack.body() == b"Hello from fnud\n"


def make_releases(stack: StackDir) -> tuple[Path, Path]:
    """root/releases/{r1,r2} with current -> releases/r1; the ini's chdir is current."""
    releases = stack.root / "releases"
    r1, r2 = releases / "r1", releases / "r2"
    for release, text in ((r1, "release one"), (r2, "release two")):
        release.mkdir(parents=True)
        source = stack.app.read_text().replace("Hello from fnud", text)
        (release / "app.py").write_text(source)
    (stack.root / "current").symlink_to("releases/r1")
    stack.ini.write_text(stack.ini.read_text().replace("chdir = %dapp", "chdir = %dcurrent"))
    return r1, r2


def switch(link: Path, target: str) -> None:
    tmp = link.with_name("current.tmp")
    tmp.symlink_to(target)
    os.replace(tmp, link)


def test_symlink_release_switch_and_fnud_rollback(stack: StackDir) -> None:
    r1, r2 = make_releases(stack)
    stack.start()
    assert stack.body() == b"release one\n"
    with Load(stack.url + "/", concurrency=4) as load:
        load.wait_requests(20)
        switch(stack.root / "current", "releases/r2")
        result = stack.fnud("reload")
        assert result.returncode == 0, result.stdout + result.stderr
        load.wait_requests(20)
        assert stack.body() == b"release two\n"
        assert stack.generation()["release"] == str(r2)
        back = stack.fnud("rollback")
        assert back.returncode == 0, back.stdout + back.stderr
        load.wait_requests(20)
        outcome = load.stop()
    assert stack.body() == b"release one\n"
    assert stack.generation()["release"] == str(r1)
    assert os.readlink(stack.root / "current") == "releases/r1"  # disk and service agree
    assert outcome.failures == 0, outcome.summary()


def test_fnud_rollback_preflights_the_previous_release_again(stack: StackDir) -> None:
    """The previous release passed the gate once; edited in place since, it is refused
    and the current one keeps serving."""
    r1, _ = make_releases(stack)
    stack.start()
    switch(stack.root / "current", "releases/r2")
    assert stack.fnud("reload").returncode == 0
    (r1 / "app.py").write_text((r1 / "app.py").read_text() + "\ndef broken(:\n")
    back = stack.fnud("rollback")
    assert back.returncode == 1, back.stdout + back.stderr
    assert back.stderr.strip().count("\n") == 0, back.stderr
    assert "app does not load" in back.stderr and f"{r1}/app.py" in back.stderr, back.stderr
    assert stack.body() == b"release two\n"
    assert os.readlink(stack.root / "current") == "releases/r2"
    (r1 / "app.py").write_text((r1 / "app.py").read_text().replace("\ndef broken(:\n", ""))
    assert stack.fnud("rollback").returncode == 0  # fixed: it goes back
    assert stack.body() == b"release one\n"


def test_a_restarted_daemon_still_knows_what_to_roll_back_to(stack: StackDir) -> None:
    make_releases(stack)
    stack.start()
    switch(stack.root / "current", "releases/r2")
    assert stack.fnud("reload").returncode == 0
    daemon = int(stack.status()["daemon"]["pid"])  # type: ignore[index]
    os.kill(daemon, signal.SIGKILL)  # adopted by the next daemon
    wait_for(lambda: not psutil.pid_exists(daemon), message="daemon gone")
    stack.start()
    back = stack.fnud("rollback")
    assert back.returncode == 0, back.stdout + back.stderr
    assert stack.body() == b"release one\n"
    assert stack.fnud("stop").returncode == 0  # and across a stop and start
    stack.start()
    assert stack.fnud("rollback").returncode == 0
    assert stack.body() == b"release two\n"


def test_rollback_with_nothing_to_go_back_to_is_one_line(running: StackDir) -> None:
    result = running.fnud("rollback")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "nothing to roll back to" in result.stderr


def test_a_respawn_loads_the_generations_own_release_not_the_new_link(stack: StackDir) -> None:
    make_releases(stack)
    stack.start()
    switch(stack.root / "current", "releases/r2")  # no reload: generation 1 stays on r1
    for pid in stack.worker_pids():
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: len(stack.worker_pids()) == 3, message="workers respawned")
    answers = {stack.body() for _ in range(12)}
    assert answers == {b"release one\n"}


def kill_under_load(stack: StackDir, pid: int, concurrency: int = 8) -> tuple[int, str]:
    with Load(stack.url + "/", concurrency=concurrency) as load:
        load.wait_requests(40)
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: stack.serving() and all(
            p["state"] == "RUNNING" for p in stack.programs().values()
        ), message="the stack serving again")
        load.wait_requests(40)
        outcome = load.stop()
    return outcome.failures, outcome.summary()


def test_uwsgi_master_kill_costs_at_most_the_requests_in_flight(running: StackDir) -> None:
    failures, summary = kill_under_load(running, running.master_pid())
    assert failures <= 8, summary  # one per client at most: nothing was refused


def test_nginx_master_kill_costs_at_most_the_requests_in_flight(running: StackDir) -> None:
    failures, summary = kill_under_load(running, int(running.programs()["nginx"]["pid"]))
    assert failures <= 8, summary


def test_a_restarted_daemon_takes_the_sockets_back(running: StackDir) -> None:
    daemon = int(running.status()["daemon"]["pid"])  # type: ignore[index]
    os.kill(daemon, signal.SIGKILL)
    wait_for(lambda: not psutil.pid_exists(daemon), message="daemon gone")
    running.start()  # adopts the running generation
    assert "held sockets not recovered" not in running.daemon_log()
    failures, summary = kill_under_load(running, running.master_pid())
    assert failures <= 8, summary


def test_chain_mode_still_chain_reloads(running_chain: StackDir) -> None:
    before = running_chain.worker_pids()
    running_chain.set_greeting("chained")
    result = running_chain.fnud("reload")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(chain reload)" in result.stdout
    assert not running_chain.worker_pids() & before
    assert running_chain.generation()["mode"] == "chain"
    assert running_chain.body() == b"chained\n"


def test_chain_mode_refuses_to_reload_onto_a_switched_release(
    stack_factory: Callable[..., StackDir],
) -> None:
    stack = stack_factory(reload_mode="chain")
    make_releases(stack)
    stack.start()
    switch(stack.root / "current", "releases/r2")
    result = stack.fnud("reload")
    assert result.returncode == 1
    assert "would keep loading the old release" in result.stderr
    assert stack.body() == b"release one\n"


def test_a_socket_fnud_cannot_bind_is_named_and_nothing_starts(stack: StackDir) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", stack.uwsgi_port))
        taken.listen()
        result = stack.fnud("start")
    assert result.returncode != 0
    assert f"{stack.ini}:" in result.stderr and "in use" in result.stderr, result.stderr
    assert stack.fnud("status").returncode == 3  # no daemon left


STUCK_WHEN_MARKED = """
import os as _os, time as _time
import uwsgi as _uwsgi
if isinstance(getattr(_uwsgi, "version", None), bytes) and _os.path.exists(
    _os.path.join(_os.path.dirname(__file__), "stuck.mark")
):
    _time.sleep(120)  # the real uWSGI only: the preflight passes, the generation hangs
"""


def test_a_generation_that_never_gets_ready_fails_and_the_old_one_keeps_serving(
    stack_factory: Callable[..., StackDir],
) -> None:
    stack = stack_factory()  # the first generation starts within the usual start_timeout
    stack.app.write_text(stack.app.read_text() + STUCK_WHEN_MARKED)
    stack.start()
    # the reload reads fnud.toml again: the stuck generation is given up on after 2 s
    stack.toml.write_text(stack.toml.read_text().replace(
        "start_timeout = 30.0", "start_timeout = 2.0"))
    (stack.app.parent / "stuck.mark").write_text("")
    result, outcome = reload_under_load(stack)
    assert result.returncode == 1
    assert "failed: generation 2 not ready after 2s" in result.stderr, result.stderr
    assert stack.generation()["number"] == 1
    assert outcome.failures == 0, outcome.summary()


def test_fnud_rollback_during_a_settle_resumes_the_warm_generation(
    stack_factory: Callable[..., StackDir],
) -> None:
    stack = stack_factory(settle=60.0)
    stack.start()
    first = stack.master_pid()
    stack.set_greeting("not kept")
    assert stack.fnud("reload", "--no-wait").returncode == 0
    # each idle thread of the paused generation takes one more request before it rests
    wait_for(lambda: stack.body() == b"not kept\n", message="the new generation serving")
    result = stack.fnud("rollback")
    assert result.returncode == 0, result.stdout + result.stderr
    assert stack.master_pid() == first  # resumed, not started again
    wait_for(lambda: {stack.body() for _ in range(6)} == {b"Hello from fnud\n"},
             message="only the resumed generation answering")
    gen = stack.generation()
    assert gen["number"] == 1 and gen["previous"] is None
    assert stack.status()["last_reload"]["result"] == "rolled_back"  # type: ignore[index]


def test_stop_during_a_settle_stops_both_generations(
    stack_factory: Callable[..., StackDir],
) -> None:
    stack = stack_factory(settle=60.0)
    stack.start()
    assert stack.fnud("reload", "--no-wait").returncode == 0
    assert stack.generation()["state"] == "settling"
    result = stack.fnud("stop")
    assert result.returncode == 0, result.stderr
    assert "stack stopped" in stack.daemon_log()
    # the fixture fails the test if any process of either generation is left


def test_a_listen_added_by_an_nginx_reload_is_held_from_then_on(running: StackDir) -> None:
    from testkit.stackdir import free_port

    port = free_port()
    conf = running.nginx_conf.read_text()
    first = f"listen 127.0.0.1:{running.http_port};"
    running.nginx_conf.write_text(conf.replace(first, f"{first}\n        listen 127.0.0.1:{port};"))
    result = running.fnud("reload", "--nginx")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "listens not held" not in running.daemon_log()
    second = StackDir(running.root, port, running.uwsgi_port)
    failures, summary = kill_under_load(second, int(running.programs()["nginx"]["pid"]))
    assert failures <= 8, summary  # the new port was held too: nothing refused


FAIL_UNDER_UWSGI = """
import uwsgi as _uwsgi
if isinstance(getattr(_uwsgi, "version", None), bytes):  # passes the preflight, fails users
    @app.before_request
    def _broken() -> object:
        from flask import request as _request
        return ("broken release\\n", 500) if _request.path == "/" else None
"""


def test_a_generation_answering_5xx_under_traffic_is_rolled_back(
    stack_factory: Callable[..., StackDir],
) -> None:
    stack = stack_factory(settle=30.0, extra_ini="disable-logging = false")
    stack.start()
    stack.app.write_text(stack.app.read_text() + FAIL_UNDER_UWSGI)
    result, outcome = reload_under_load(stack)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "rolled_back" in result.stderr and "were 5xx" in result.stderr, result.stderr
    assert stack.generation()["number"] == 1
    assert stack.body() == b"Hello from fnud\n"
    assert outcome.statuses[500] < outcome.requests  # the old generation served the rest


def test_held_sockets_are_non_blocking_in_the_programs(running: StackDir) -> None:
    """nginx does not set O_NONBLOCK on sockets it inherits: a blocking listen socket
    lets one worker's accept() stall every connection that worker serves."""
    for name, program in running.programs().items():
        listening = [
            c for c in psutil.Process(program["pid"]).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        ]
        assert listening, name
        for conn in listening:
            info = Path(f"/proc/{program['pid']}/fdinfo/{conn.fd}").read_text()
            flags = int(info.splitlines()[1].split()[1], 8)
            assert flags & os.O_NONBLOCK, (name, conn.laddr, oct(flags))


def test_status_text_names_both_generations_during_a_settle(
    stack_factory: Callable[..., StackDir],
) -> None:
    stack = stack_factory(settle=60.0)
    stack.start()
    assert stack.fnud("reload", "--no-wait").returncode == 0
    text = stack.fnud("status").stdout
    assert "generation 2 settling (generation)" in text, text
    assert "generation 1 paused" in text and "kept warm for a rollback" in text, text


def test_a_retired_generation_ends_when_its_requests_do_not_at_the_stop_deadline(
    running: StackDir,
) -> None:
    """Its paused threads sleep in a 10 s poll that no signal ends (uwsgi_reap.py): fnud
    ends the workers that only wait out the pause, and leaves one in a request alone."""
    old_workers = set(running.worker_pids())
    with Load(running.url + "/", concurrency=4) as load:  # threads pause after a request
        load.wait_requests(30)
        flight = running.request_in_flight(8)  # in generation 1 when it is retired
        result = running.fnud("reload")
        load.wait_requests(20)
        outcome = load.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    status, text = flight.result()
    assert status == 200 and json.loads(text) == {"slept": 8.0}
    assert outcome.failures == 0, outcome.summary()
    wait_for(lambda: not any(psutil.pid_exists(p) for p in old_workers),
             message="generation 1's workers to end")
    log = running.daemon_log()
    assert "stop deadline passed" not in log, log[-3000:]


def _open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_the_daemon_holds_no_more_descriptors_after_reloads_and_kills(
    running: StackDir,
) -> None:
    """Every retired generation, restarted program and reopened log lets go of what it
    held: the daemon's descriptors come back to where they were."""
    daemon = int(running.status()["daemon"]["pid"])  # type: ignore[index]
    running.set_greeting("Baseline")
    assert running.fnud("reload", "--app").returncode == 0
    before = _open_fds(daemon)
    for number in range(3):
        running.set_greeting(f"Round {number}")
        assert running.fnud("reload", "--app").returncode == 0
    assert running.fnud("reopen-logs").returncode == 0
    os.kill(min(running.worker_pids("uwsgi")), signal.SIGKILL)
    nginx = int(running.programs()["nginx"]["pid"])
    os.kill(nginx, signal.SIGKILL)
    wait_for(lambda: running.programs()["nginx"]["state"] == "RUNNING"
             and running.programs()["nginx"]["pid"] != nginx, message="nginx back")
    wait_for(lambda: _open_fds(daemon) <= before, timeout=30,
             message=f"the daemon's descriptors back to {before}")


def _kill_daemon_and_adopt(stack: StackDir) -> None:
    daemon = int(stack.status()["daemon"]["pid"])  # type: ignore[index]
    os.kill(daemon, signal.SIGKILL)
    wait_for(lambda: not psutil.pid_exists(daemon)
             or psutil.Process(daemon).status() == psutil.STATUS_ZOMBIE, message="daemon gone")
    started = stack.fnud("start")
    assert started.returncode == 0 and "adopted" in started.stdout, started.stdout


def test_the_sockets_come_back_after_a_second_daemon_kill(running: StackDir) -> None:
    """An adopted master holds the sockets under the numbers of the daemon that started
    it: state.json records those, not the adopting daemon's own, so a second kill -9
    still finds them."""
    _kill_daemon_and_adopt(running)
    _kill_daemon_and_adopt(running)
    assert "held sockets not recovered" not in running.daemon_log()
    running.set_greeting("After two kills")
    result = running.fnud("reload", "--app")
    assert result.returncode == 0, result.stdout + result.stderr
    assert running.body() == b"After two kills\n"


def _masters(stack: StackDir) -> list[int]:
    prefix = str(stack.run / "uwsgi-")
    out = []
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            mine = prefix in " ".join(proc.info["cmdline"] or [])
            parent = proc.parent()
            if mine and parent is not None and prefix not in " ".join(parent.cmdline()):
                out.append(proc.pid)
    return out


def test_a_daemon_killed_during_a_settle_leaves_no_paused_generation(
    stack_factory: Callable[..., StackDir],
) -> None:
    """The new generation keeps serving; the paused one is stopped by the daemon that
    adopts the stack (nothing of it left running)."""
    stack = stack_factory(settle=30.0)
    stack.start()
    stack.set_greeting("The new one")
    reload = subprocess.Popen([sys.executable, "-m", "supervisor", "-c", str(stack.toml),
                               "reload", "--app"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: stack.generation()["state"] == "settling", timeout=60,
                 message="the settle")
        assert len(_masters(stack)) == 2
        _kill_daemon_and_adopt(stack)
    finally:
        reload.wait(timeout=60)
    wait_for(lambda: len(_masters(stack)) == 1, timeout=30,
             message="the paused generation stopped")
    assert stack.body() == b"The new one\n"
    assert stack.generation()["state"] == "serving"
