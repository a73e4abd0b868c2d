"""The foundation against the real nginx and uWSGI: start, status, stop, crash restart."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import urllib.request
from collections.abc import Callable, Iterator

import psutil
import pytest

from supervisor.common.ports import NGINX_PIDFILE, NGINX_UNIT
from testkit.stackdir import StackDir, wait_for


def get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read()


def test_start_serves_through_nginx_and_status_matches_processes(running: StackDir) -> None:
    status, body = get(running.url + "/")
    assert status == 200 and b"Hello from fnud" in body

    result = running.fnud("status", "--json")
    assert result.returncode == 0, result.stderr
    state = json.loads(result.stdout)
    assert psutil.pid_exists(state["daemon"]["pid"])
    uw = state["programs"]["uwsgi"]
    ng = state["programs"]["nginx"]
    assert uw["state"] == ng["state"] == "RUNNING"
    master = psutil.Process(uw["pid"])
    assert {c.pid for c in master.children()} == {w["pid"] for w in uw["workers"]}
    assert len(uw["workers"]) == 3
    assert all(isinstance(w["requests"], int) and w["status"] for w in uw["workers"])
    nginx_master = psutil.Process(ng["pid"])
    assert {c.pid for c in nginx_master.children()} == {w["pid"] for w in ng["workers"]}
    # every child runs in its own process group, led by the master
    assert os.getpgid(uw["pid"]) == uw["pid"] and os.getpgid(ng["pid"]) == ng["pid"]

    human = running.fnud("status")
    assert human.returncode == 0 and "RUNNING" in human.stdout
    assert "RSS" in human.stdout and "last reload: none yet" in human.stdout


def test_second_start_says_already_running(running: StackDir) -> None:
    before = running.status()
    again = running.fnud("start")
    assert again.returncode == 0
    assert "already running" in again.stdout
    assert running.status()["daemon"] == before["daemon"]


def test_stop_leaves_nothing_and_status_says_not_running(running: StackDir) -> None:
    state = running.status()
    pids = [state["daemon"]["pid"]]  # type: ignore[index]
    for prog in state["programs"].values():  # type: ignore[attr-defined]
        pids.append(prog["pid"])
        pids += [w["pid"] for w in prog["workers"]]
    result = running.fnud("stop")
    assert result.returncode == 0, result.stderr
    assert not [pid for pid in pids if psutil.pid_exists(pid)
                and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert running.generation_files() == {}  # no rendered ini, fifo or stats socket left
    assert running.fnud("status").returncode == 3
    again = running.fnud("stop")
    assert again.returncode == 0 and "not running" in again.stdout


def _restarted(stack: StackDir, program: str, old_pid: int) -> bool:
    prog = stack.status()["programs"][program]  # type: ignore[index]
    return bool(prog["state"] == "RUNNING" and prog["pid"] != old_pid and stack.serving())


def test_killed_uwsgi_master_is_restarted(running: StackDir) -> None:
    old = running.status()["programs"]["uwsgi"]["pid"]  # type: ignore[index]
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: _restarted(running, "uwsgi", old), timeout=30, message="uWSGI restart")
    assert running.status()["programs"]["uwsgi"]["restarts"] == 1  # type: ignore[index]


def test_killed_nginx_master_is_restarted(running: StackDir) -> None:
    old = running.status()["programs"]["nginx"]["pid"]  # type: ignore[index]
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: _restarted(running, "nginx", old), timeout=30, message="nginx restart")


def test_port_in_use_fails_clearly_and_leaves_nothing(stack: StackDir) -> None:
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", stack.http_port))
        squatter.listen()
        result = stack.fnud("start")
    assert result.returncode == 1
    message = result.stderr.strip()
    assert "\n" not in message and "Traceback" not in message
    assert "in use" in message and str(stack.http_port) in message
    assert stack.fnud("status").returncode == 3


def test_app_that_does_not_import_fails_start_with_file_and_line(stack: StackDir) -> None:
    stack.app.write_text(stack.app.read_text() + "\ndef broken(:\n")
    result = stack.fnud("start")
    assert result.returncode == 1
    assert f"{stack.app}:" in result.stderr and "SyntaxError" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_binary_fails_clearly(stack: StackDir) -> None:
    text = stack.toml.read_text()
    broken = text.replace('conf = "nginx.conf"', 'conf = "nginx.conf"\nbinary = "nginx-nope"')
    stack.toml.write_text(broken)
    result = stack.fnud("start")
    assert result.returncode == 1
    assert "nginx binary not found (nginx-nope)" in result.stderr


def test_malformed_toml_is_one_line_with_file_and_line(stack: StackDir) -> None:
    stack.toml.write_text(stack.toml.read_text() + "\n[health\n")
    result = stack.fnud("start")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"fnud: {stack.toml}:")
    assert "Traceback" not in result.stderr


def test_foreground_sigterm_stops_everything(stack_factory: Callable[..., StackDir]) -> None:
    import subprocess
    import sys

    stack = stack_factory()
    proc = subprocess.Popen(
        [sys.executable, "-m", "supervisor", "-c", str(stack.toml), "start", "--foreground"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        wait_for(lambda: stack.serving(), timeout=30, message="stack serving")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "stack stopped" in out


def test_leak_check_catches_a_running_stack(stack: StackDir) -> None:
    """The fixture's leftover check must be able to fail: a live stack is a leak."""
    import pytest

    stack.start()
    with pytest.raises(pytest.fail.Exception, match="left behind"):
        from testkit.stackdir import assert_no_leftovers

        assert_no_leftovers([stack.root], timeout=0.5)
    # assert_no_leftovers killed what it found; the fixture's stop then finds nothing


@pytest.fixture
def debian_nginx(stack: StackDir) -> Iterator[int]:
    """An nginx started the way Debian's nginx.service starts it (the pid file its unit
    names), holding the stack's HTTP port, as it does on a fresh Debian server."""
    if not NGINX_UNIT.exists() or NGINX_PIDFILE.exists():
        pytest.skip("needs Debian's nginx package and no nginx.service running")
    prefix = stack.root / "debian-nginx"
    (prefix / "logs").mkdir(parents=True)
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"pid {NGINX_PIDFILE};\nerror_log logs/error.log;\nevents {{}}\n"
        f"http {{ access_log off; client_body_temp_path logs; proxy_temp_path logs;\n"
        f"  server {{ listen 127.0.0.1:{stack.http_port}; return 200 'welcome to nginx'; }} }}\n"
    )
    proc = subprocess.Popen(
        ["nginx", "-p", f"{prefix}/", "-c", str(conf), "-g", "daemon off;"],
        stdin=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        wait_for(NGINX_PIDFILE.exists, message="nginx's pid file")
        yield proc.pid
    finally:
        proc.send_signal(signal.SIGQUIT)
        proc.wait(timeout=30)
        NGINX_PIDFILE.unlink(missing_ok=True)


def test_a_port_held_by_debians_nginx_names_the_service(
    stack: StackDir, debian_nginx: int
) -> None:
    check = stack.fnud("check")
    assert check.returncode == 1
    assert f"address already in use by pid {debian_nginx} (nginx of nginx.service)" in check.stdout
    assert "systemctl disable --now nginx" in check.stdout
    start = stack.fnud("start")
    assert start.returncode == 1
    assert "nginx.service" in start.stderr and "systemctl disable --now nginx" in start.stderr
    assert len(start.stderr.strip().splitlines()) == 1, start.stderr
