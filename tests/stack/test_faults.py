"""Fault matrix against the real stack: things die, the site stays up, nothing leaks."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import stat
import struct
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supervisor.control import wire as control
from testkit.load import Load
from testkit.stackdir import StackDir, free_port, wait_for


@pytest.mark.parametrize(("program", "count"), [("uwsgi", 3), ("nginx", 2)])
def test_killed_worker_is_respawned_by_its_master(
    running: StackDir, program: str, count: int
) -> None:
    victim = min(running.worker_pids(program))
    os.kill(victim, signal.SIGKILL)
    wait_for(
        lambda: (lambda now: len(now) == count and victim not in now)(
            running.worker_pids(program)
        ),
        message=f"{program} to respawn the worker",
    )
    assert running.serving()
    assert running.programs()[program]["restarts"] == 0  # the master handled it


def test_killed_daemon_leaves_site_up_and_is_readopted(running: StackDir) -> None:
    state = running.status()
    daemon = state["daemon"]["pid"]  # type: ignore[index]
    before = {name: prog["pid"] for name, prog in running.programs().items()}
    with Load(running.url + "/", concurrency=4) as load:
        load.wait_requests(30)
        os.kill(daemon, signal.SIGKILL)
        wait_for(lambda: not psutil.pid_exists(daemon) or
                 psutil.Process(daemon).status() == psutil.STATUS_ZOMBIE,
                 message="daemon gone")
        load.wait_requests(100)
        assert running.fnud("status").returncode == 3
        result = running.fnud("start")
        assert result.returncode == 0, result.stderr
        assert "adopted" in result.stdout
        load.wait_requests(50)
        outcome = load.stop()
    assert outcome.failures == 0, outcome.summary()
    after = running.programs()
    assert {name: prog["pid"] for name, prog in after.items()} == before
    assert all(prog["state"] == "RUNNING" for prog in after.values())
    # the adopted stack is fully controllable
    reload = running.fnud("reload")
    assert reload.returncode == 0, reload.stderr
    assert running.fnud("stop").returncode == 0
    for pid in before.values():
        wait_for(lambda pid=pid: not psutil.pid_exists(pid), message=f"{pid} gone")


def test_stop_lets_a_request_in_flight_finish(running: StackDir) -> None:
    flight = running.request_in_flight(2)
    result = running.fnud("stop")
    assert result.returncode == 0
    assert flight.result()[0] == 200


def test_stop_kills_a_stuck_program_after_the_deadline(
    stack_factory: Callable[..., StackDir],
) -> None:
    stack = stack_factory(stop_timeout=2.0)
    stack.start()
    flight = stack.request_in_flight(100)
    result = stack.fnud("stop")
    assert result.returncode == 0
    assert flight.result()[0] != 200, "the 100 s request should have been cut by the SIGKILL"
    assert "stop deadline passed, killing the process group" in stack.daemon_log()


def test_crash_loop_goes_backoff_then_fatal_and_daemon_stays_responsive(
    stack_factory: Callable[..., StackDir],
) -> None:
    stack = stack_factory(quick_failures=3)
    stack.start()
    stack.app.write_text("raise SystemError('crash at import')\n")
    os.kill(stack.programs()["uwsgi"]["pid"], signal.SIGKILL)
    seen: set[str] = set()

    def fatal() -> bool:
        state = stack.programs()["uwsgi"]["state"]
        seen.add(state)
        return bool(state == "FATAL")

    wait_for(fatal, timeout=60, interval=0.02, message="uWSGI FATAL")
    # every transition is logged (a status poll can miss a 0.2 s BACKOFF under load)
    assert re.search(r"program=uwsgi old=EXITED new=BACKOFF", stack.daemon_log()), seen
    uw = stack.programs()["uwsgi"]
    assert "exited with code 22" in uw["last_exit"]  # uWSGI's need-app exit code
    assert stack.programs()["nginx"]["state"] == "RUNNING"  # the other program keeps running
    result = stack.fnud("status")
    assert result.returncode == 1 and "FATAL" in result.stdout
    # fixing the app and reloading brings it back
    stack.app.write_text(_example_app())
    reload = stack.fnud("reload", "--app")
    assert reload.returncode == 0, reload.stderr
    assert stack.programs()["uwsgi"]["state"] == "RUNNING"
    assert stack.serving()


def _example_app() -> str:
    from testkit.stackdir import EXAMPLE_APP

    return EXAMPLE_APP.read_text()


def test_unreadable_config_is_one_line(stack: StackDir) -> None:
    stack.toml.unlink()
    stack.toml.mkdir()
    result = stack.fnud("start")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "cannot read config" in result.stderr


def test_failed_start_leaves_nothing_half_written(stack: StackDir) -> None:
    stack.app.write_text("raise RuntimeError('boom at import')\n")
    result = stack.fnud("start")
    assert result.returncode == 1
    assert "boom at import" in result.stderr
    assert not (stack.run / "fnud.sock").exists()
    assert not (stack.run / "state.json").exists()
    assert stack.fnud("status").returncode == 3


# -- security ----------------------------------------------------------------------


def test_runtime_dir_and_socket_are_private(running: StackDir) -> None:
    assert stat.S_IMODE(running.run.stat().st_mode) == 0o700
    sock = running.run / "fnud.sock"
    assert stat.S_ISSOCK(sock.stat().st_mode)
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600


def test_other_users_cannot_control_the_daemon(running: StackDir) -> None:
    if os.geteuid() != 0:
        import pytest

        pytest.skip("needs root to act as another user")
    python = "/usr/bin/python3"  # fnud's venv python lives under /root, closed to nobody
    if not os.access(python, os.X_OK):
        import pytest

        pytest.skip("no system python3 to run as another user")
    probe = (
        "import json, socket, struct, sys\n"
        "try:\n"
        "    s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])\n"
        "    body = json.dumps({'cmd': 'status', 'args': {}}).encode()\n"
        "    s.sendall(struct.pack('>I', len(body)) + body)\n"
        "    head = s.recv(4)\n"
        "    reply = json.loads(s.recv(struct.unpack('>I', head)[0]))\n"
        "    print('ALLOWED' if reply.get('ok') else 'DENIED ' + reply.get('error', ''))\n"
        "except OSError as exc:\n"
        "    print('DENIED', exc)\n"
    )
    result = subprocess.run(
        [python, "-c", probe, str(running.run / "fnud.sock")],
        capture_output=True, text=True, user=65534, group=65534, timeout=30, cwd="/",
    )
    assert "DENIED" in result.stdout, result.stdout + result.stderr


def test_tcp_stats_in_user_ini_is_not_exposed(stack_factory: Callable[..., StackDir]) -> None:
    port = free_port()
    stack = stack_factory(extra_ini=f"stats = 127.0.0.1:{port}")
    stack.start()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    assert (stack.run / "uwsgi" / "uwsgi-stats-1.sock").exists()


def test_children_get_a_scrubbed_environment(stack: StackDir) -> None:
    stack.env = {"UWSGI_PROCESSES": "7", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}
    stack.start()
    master = stack.programs()["uwsgi"]["pid"]
    environ = psutil.Process(master).environ()
    assert not [k for k in environ if k.startswith(("UWSGI_", "WATCHDOG_"))]
    assert len(stack.programs()["uwsgi"]["workers"]) == 3  # UWSGI_PROCESSES=7 did not leak


def _raw_exchange(path: str, payload: bytes) -> dict[str, Any] | None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(path)
        sock.sendall(payload)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    if len(data) < 4:
        return None
    (length,) = struct.unpack(">I", data[:4])
    return dict(json.loads(data[4 : 4 + length]))


def test_control_protocol_rejects_garbage_and_keeps_serving(running: StackDir) -> None:
    path = str(running.run / "fnud.sock")
    huge = _raw_exchange(path, struct.pack(">I", control.MAX_FRAME + 1))
    assert huge is not None and not huge["ok"] and "exceeds" in huge["error"]
    bad = _raw_exchange(path, struct.pack(">I", 5) + b"{nope")
    assert bad is not None and not bad["ok"] and "bad JSON" in bad["error"]
    unknown = _raw_exchange(path, control.encode({"cmd": "rm -rf", "args": {}}))
    assert unknown is not None and not unknown["ok"] and "unknown command" in unknown["error"]

    @settings(
        max_examples=60, deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(st.binary(max_size=64))
    def fuzz(payload: bytes) -> None:
        reply = _raw_exchange(path, payload)
        assert reply is None or reply.get("ok") is False or "result" in reply
        assert control.call(running.run / "fnud.sock", "ping", timeout=10)["pid"] > 0

    fuzz()
    assert running.serving()
    assert running.fnud("status").returncode == 0


def test_stop_during_a_chain_reload_waits_for_it_instead_of_killing(
    running_chain: StackDir,
) -> None:
    """uWSGI never exits on 'q' while a chain reload loads a worker; fnud must not
    send it then (it used to, and the stop ended in SIGKILL after the deadline)."""
    running = running_chain
    before = {w["pid"] for w in running.programs()["uwsgi"]["workers"]}
    results: list[int] = []
    reload = threading.Thread(target=lambda: results.append(running.fnud("reload").returncode))
    reload.start()
    wait_for(
        lambda: {w["pid"] for w in running.programs()["uwsgi"]["workers"]} - before,
        message="the chain reload to replace a first worker",
        interval=0.01,
    )
    stop = running.fnud("stop")
    reload.join(timeout=60)
    assert stop.returncode == 0, stop.stderr
    assert results == [0]
    log = running.daemon_log()
    assert "stop deadline passed" not in log


def test_root_refuses_to_run_the_app_as_root_unless_told(
    stack_factory: Callable[..., StackDir],
) -> None:
    if os.geteuid() != 0:
        import pytest

        pytest.skip("the refusal applies to root only")
    stack = stack_factory(allow_root=False)
    result = stack.fnud("start")
    assert result.returncode == 1
    assert "refusing to run the app as root" in result.stderr
    assert "[fnud] user" in result.stderr and "allow_root" in result.stderr


def test_nginx_temp_dirs_are_reachable_by_its_workers(running: StackDir) -> None:
    """As root, nginx's workers are another user: a large body buffered to a temp file
    must still work (the prefix is outside the 0700 runtime dir)."""
    body = b"x" * 300_000  # above client_body_buffer_size: nginx writes a temp file
    request = urllib.request.Request(running.url + "/upload", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert json.loads(response.read()) == {"received": len(body)}


def test_stop_during_backoff_reaps_the_orphaned_nginx_workers(
    stack_factory: Callable[..., StackDir],
) -> None:
    # any crash counts as quick, however long a loaded machine took to get here
    stack = stack_factory(backoff_initial=30.0, quick_seconds=600.0)
    stack.start()
    orphans = stack.worker_pids("nginx")
    os.kill(stack.programs()["nginx"]["pid"], signal.SIGKILL)  # a quick failure: 30 s backoff
    wait_for(lambda: stack.programs()["nginx"]["state"] == "BACKOFF", message="BACKOFF")
    assert all(psutil.pid_exists(pid) for pid in orphans)  # still serving the port
    assert stack.fnud("stop").returncode == 0
    wait_for(lambda: not any(psutil.pid_exists(pid) for pid in orphans), message="orphans gone")


def test_stop_without_daemon_stops_what_a_killed_daemon_left(running: StackDir) -> None:
    state = running.status()
    daemon = state["daemon"]["pid"]  # type: ignore[index]
    masters = [prog["pid"] for prog in running.programs().values()]
    os.kill(daemon, signal.SIGKILL)
    wait_for(lambda: running.fnud("status").returncode == 3, message="daemon gone")
    result = running.fnud("stop")
    assert result.returncode == 0
    assert "stopped what it had left running" in result.stdout
    wait_for(lambda: not any(psutil.pid_exists(pid) for pid in masters), message="masters gone")


def test_refused_reload_keeps_the_old_config_in_force(running: StackDir) -> None:
    broken = running.root / "broken.ini"
    broken.write_text(running.ini.read_text().replace("module = app", "module = nosuchmodule"))
    text = running.toml.read_text()
    running.toml.write_text(text.replace('ini = "uwsgi.ini"', 'ini = "broken.ini"'))
    result = running.fnud("reload")
    assert result.returncode == 1 and "nosuchmodule" in result.stderr
    # a crash now must restart uWSGI from the config still in force, not the refused one
    old = running.programs()["uwsgi"]["pid"]
    os.kill(old, signal.SIGKILL)
    wait_for(
        lambda: (lambda p: p["state"] == "RUNNING" and p["pid"] != old)(
            running.programs()["uwsgi"]
        ),
        timeout=30, message="uWSGI back on the old ini",
    )
    assert running.serving()


def test_reload_refuses_settings_that_need_a_restart(running: StackDir) -> None:
    from supervisor.control import wire as control

    text = running.toml.read_text()
    running.toml.write_text(text.replace('runtime_dir = "run"', 'runtime_dir = "run2"'))
    try:  # the CLI would look for the daemon in run2: ask the one in run directly
        with pytest.raises(control.ClientError) as refused:
            control.call(running.run / "fnud.sock", "reload", {}, timeout=60)
    finally:
        running.toml.write_text(text)  # so that the fixture's stop finds the daemon
    message = str(refused.value)
    assert "[fnud] runtime_dir, [nginx] prefix changed" in message
    assert "fnud stop && fnud start" in message


def test_runtime_dir_open_to_others_is_refused(stack: StackDir) -> None:
    stack.run.mkdir()
    stack.run.chmod(0o777)
    result = stack.fnud("start")
    assert result.returncode == 1
    assert "open to other users" in result.stderr and str(stack.run) in result.stderr


def _kill_daemon(stack: StackDir) -> None:
    daemon = stack.status()["daemon"]["pid"]  # type: ignore[index]
    os.kill(daemon, signal.SIGKILL)
    wait_for(lambda: stack.fnud("status").returncode == 3, message="daemon gone")


def test_start_after_daemon_and_nginx_master_died_adopts_uwsgi_and_replaces_nginx(
    running: StackDir,
) -> None:
    uwsgi_master = running.programs()["uwsgi"]["pid"]
    nginx_master = running.programs()["nginx"]["pid"]
    orphans = running.worker_pids("nginx")
    _kill_daemon(running)
    os.kill(nginx_master, signal.SIGKILL)  # its workers stay, holding the port
    result = running.fnud("start")
    assert result.returncode == 0, result.stderr
    assert "uwsgi running (adopted)" in result.stdout
    progs = running.programs()
    assert progs["uwsgi"]["pid"] == uwsgi_master
    assert progs["nginx"]["pid"] not in (0, nginx_master)
    assert not any(psutil.pid_exists(pid) for pid in orphans)
    assert running.serving()


def test_stop_without_daemon_also_stops_a_dead_masters_workers(running: StackDir) -> None:
    nginx_master = running.programs()["nginx"]["pid"]
    _kill_daemon(running)
    os.kill(nginx_master, signal.SIGKILL)
    result = running.fnud("stop")
    assert result.returncode == 0 and "uwsgi (pid" in result.stdout
    # the fixture then fails the test if any nginx worker of the dead master is left


def test_adoption_survives_uwsgi_renaming_its_processes(
    stack_factory: Callable[..., StackDir],
) -> None:
    stack = stack_factory(extra_ini="auto-procname = true")
    stack.start()
    before = {name: prog["pid"] for name, prog in stack.programs().items()}
    _kill_daemon(stack)
    result = stack.fnud("start")
    assert result.returncode == 0, result.stderr
    assert "uwsgi running (adopted)" in result.stdout
    assert {name: prog["pid"] for name, prog in stack.programs().items()} == before


def test_stop_during_the_app_preflight_leaves_no_interpreter_behind(
    stack_factory: Callable[..., StackDir],
) -> None:
    stack = stack_factory()
    source = stack.app.read_text()
    future = "from __future__ import annotations\n"
    stack.app.write_text(source.replace(future, future + "import time\ntime.sleep(60)\n", 1))
    starter = threading.Thread(target=lambda: stack.fnud("start"))
    starter.start()
    wait_for(lambda: _preflight_running(stack), timeout=30, message="the preflight")
    assert stack.fnud("stop").returncode == 0
    starter.join(timeout=60)
    # the fixture fails the test if the preflight's python (cwd: the app dir) is left


def _preflight_running(stack: StackDir) -> bool:
    """The app-import interpreter runs (cwd: the stack's app dir) under a live daemon."""
    for proc in psutil.process_iter(["cwd", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if proc.info["cwd"] == str(stack.app.parent) and "import json" in cmdline:
            return stack.fnud("status").returncode != 3
    return False
