"""systemd: sd_notify over a real socket against the real stack, the unit file, journald logs.

The notify tests play systemd's part: they bind the AF_UNIX datagram socket that
$NOTIFY_SOCKET names, run ``fnud start --foreground`` as systemd would (Type=notify,
NotifyAccess=main) and read what arrives, with the sender's credentials, so a message
from any process but fnud's main one is caught too.
"""

from __future__ import annotations

import array
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
import structlog

from supervisor.cli.admin import fnud_executable
from supervisor.config.parse import parse_config
from supervisor.systemd import unit
from testkit import stackfiles
from testkit.notify import Listener, answers
from testkit.stackdir import ROOT, StackDir, wait_for

SHIPPED_UNIT = ROOT / "systemd" / "fnud.service"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_systemd_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed"
)
#: never passed to nginx or uWSGI (uWSGI speaks sd_notify and reads UWSGI_* as options)
SCRUBBED = {
    "NOTIFY_SOCKET": "",  # filled in with the listener's address
    "WATCHDOG_USEC": "30000000",
    "WATCHDOG_PID": "1",
    "UWSGI_VACUUM": "true",
}


@pytest.fixture(params=["path", "abstract"])
def listener(request: pytest.FixtureRequest, stack: StackDir) -> Iterator[Listener]:
    if request.param == "path":
        address = str(stack.root / "notify.sock")
    else:
        address = f"@fnud-test-{uuid.uuid4().hex[:12]}"
    sock = Listener(address, stack.url + "/")
    yield sock
    sock.close()


@pytest.fixture
def foreground(stack: StackDir) -> Iterator[Callable[[dict[str, str]], subprocess.Popen[bytes]]]:
    """Start ``fnud start --foreground`` the way systemd's ExecStart does."""
    started: list[subprocess.Popen[bytes]] = []

    def start(extra_env: dict[str, str]) -> subprocess.Popen[bytes]:
        env = {**os.environ, **stack.env, **extra_env}
        env.pop("JOURNAL_STREAM", None)
        with open(stack.root / "foreground.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "supervisor", "-c", str(stack.toml),
                 "start", "--foreground"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
            )
        started.append(proc)
        return proc

    yield start
    for proc in started:  # only if a test failed half-way; the stack fixture checks the rest
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def foreground_log(stack: StackDir) -> str:
    path = stack.root / "foreground.log"
    return path.read_text(errors="replace")[-3000:] if path.exists() else ""


# -- the real stack --------------------------------------------------------------------


def test_notify_sequence_start_reload_stop(
    stack: StackDir, listener: Listener,
    foreground: Callable[[dict[str, str]], subprocess.Popen[bytes]],
) -> None:
    proc = foreground({"NOTIFY_SOCKET": listener.env_value})
    ready = listener.wait("READY", proc)
    # the held sockets go to the fd store first (tested below); nothing else before READY
    assert [k for k in listener.kinds() if k != "FDSTORE"] == ["READY"], listener.kinds()
    assert ready.serving, "READY=1 arrived while the stack URL did not answer"
    assert ready.pid == proc.pid, "NotifyAccess=main: only fnud's main process may notify"
    assert "uwsgi running" in ready.fields.get("STATUS", "")

    # `systemctl reload` runs ExecReload: the CLI, which returns when the reload is done
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    result = stack.fnud("reload")
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert result.returncode == 0, result.stdout + result.stderr
    listener.wait("READY", proc, timeout=10.0)
    reloading = [m for m in listener.messages if m.kind == "RELOADING"]
    assert len(reloading) == 1
    usec = reloading[0].fields.get("MONOTONIC_USEC", "")
    assert usec.isdigit() and before <= int(usec) <= after, (usec, before, after)
    assert listener.messages[-1].serving

    proc.send_signal(signal.SIGTERM)  # what `systemctl stop` does with KillMode=mixed
    listener.wait("STOPPING", proc, timeout=30.0)
    assert proc.wait(timeout=60) == 0, foreground_log(stack)
    listener.drain()

    kinds = [k for k in listener.kinds() if k not in ("STATUS", "FDSTORE")]
    assert kinds == ["READY", "RELOADING", "READY", "STOPPING"], listener.kinds()
    assert {m.pid for m in listener.messages} == {proc.pid}
    statuses = [m.fields["STATUS"] for m in listener.messages if m.kind == "STATUS"]
    assert any(text.startswith("last reload ok") for text in statuses), statuses
    assert stack.fnud("status").returncode == 3  # the stack fixture checks for leftovers


def test_children_do_not_inherit_systemd_variables(
    stack: StackDir, foreground: Callable[[dict[str, str]], subprocess.Popen[bytes]],
) -> None:
    # nginx's setproctitle() writes the process title over the memory that
    # /proc/PID/environ shows (it reads empty for nginx), so nginx runs through a wrapper
    # that records its environment, then execs the real nginx (same PID, same argv).
    real_nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    assert real_nginx, "the stack tests need nginx"
    wrapper = stack.root / "nginx-wrapper"
    wrapper.write_text(
        f'#!/bin/sh\n/usr/bin/env > "{stack.root}/nginx-env.$$"\nexec {real_nginx} "$@"\n'
    )
    wrapper.chmod(0o755)
    toml = stack.toml.read_text()
    stack.toml.write_text(toml.replace("[nginx]\n", f'[nginx]\nbinary = "{wrapper}"\n', 1))

    receiver = Listener(str(stack.root / "notify.sock"), stack.url + "/")
    marker = uuid.uuid4().hex
    try:
        proc = foreground({**SCRUBBED, "NOTIFY_SOCKET": receiver.env_value, "FNUD_MARK": marker})
        receiver.wait("READY", proc)
        programs = stack.status()["programs"]
        assert isinstance(programs, dict)
        uw, ng = programs["uwsgi"], programs["nginx"]
        environs: dict[str, dict[str, str]] = {}
        for name, pid in [("uwsgi master", uw["pid"])] + [
            (f"uwsgi worker {w['id']}", w["pid"]) for w in uw["workers"]
        ]:
            environs[f"{name} (pid {pid})"] = psutil.Process(pid).environ()
        for dump in sorted(stack.root.glob("nginx-env.*")):  # nginx -t, then the master
            pid = int(dump.suffix[1:])
            environs[f"nginx (pid {pid})"] = dict(
                line.split("=", 1) for line in dump.read_text().splitlines() if "=" in line
            )
        assert f"nginx (pid {ng['pid']})" in environs
        assert len(environs) >= 2 + len(uw["workers"])
        for name, env in environs.items():
            assert env.get("FNUD_MARK") == marker, f"{name}: environment not read"
            leaked = sorted(k for k in env if k in SCRUBBED or k.startswith("UWSGI_"))
            assert not leaked, f"{name} inherited {leaked}"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, foreground_log(stack)
    finally:
        receiver.close()


# -- the unit file ---------------------------------------------------------------------


def verify(text: str, directory: Path) -> str:
    """``systemd-analyze verify`` on ``text`` as fnud.service; everything it printed."""
    assert SYSTEMD_ANALYZE is not None
    path = directory / "fnud.service"
    path.write_text(text)
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", str(path)], capture_output=True, text=True, timeout=60,
    )
    output = (result.stdout + result.stderr).strip()
    return output or ("" if result.returncode == 0 else f"exit {result.returncode}")


def exec_lines(text: str) -> dict[str, str]:
    return dict(
        line.split("=", 1) for line in text.splitlines() if line.startswith(("Exec", "User="))
    )


@needs_systemd_analyze
def test_shipped_unit_verifies_clean(tmp_path: Path) -> None:
    # verify insists that ExecStart= names an existing executable: point the two Exec
    # lines at this installation's fnud, leave every other line as shipped
    real = fnud_executable()
    lines = SHIPPED_UNIT.read_text().splitlines(keepends=True)
    patched = [
        re.sub(r"^(Exec\w+=)/usr/local/bin/fnud ", lambda m: f"{m.group(1)}{real} ", line)
        for line in lines
    ]
    assert sum(a != b for a, b in zip(lines, patched, strict=True)) == 2
    assert verify("".join(patched), tmp_path) == ""


@needs_systemd_analyze
def test_systemd_unit_command_fills_in_this_config_and_this_fnud(
    stack: StackDir, tmp_path: Path,
) -> None:
    result = stack.fnud("systemd-unit")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    fnud = str(Path(sys.executable).parent / "fnud")  # what the CLI under test finds
    assert Path(fnud).exists()
    toml = os.path.abspath(stack.toml)
    lines = exec_lines(text)
    assert lines["ExecStart"] == f"{fnud} -c {toml} start --foreground"
    assert lines["ExecReload"] == f"{fnud} -c {toml} reload"
    assert f"\nWorkingDirectory={os.path.abspath(stack.root)}\n" in text
    if os.geteuid() == 0:
        assert "User" not in lines and "\n#User=" in text
    else:
        assert lines["User"] and lines["User"] != "root"
    # the stack lives in /tmp: a private /tmp would hide it from the service
    assert "\nPrivateTmp=no\n" in text
    assert f"\nReadWritePaths=-{os.path.abspath(stack.run)}\n" in text
    assert verify(text, tmp_path) == ""


# -- journald logging ------------------------------------------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def test_watchdog_pings_come_from_the_loop_at_half_the_interval(
    stack: StackDir, foreground: Callable[[dict[str, str]], subprocess.Popen[bytes]],
) -> None:
    listener = Listener(str(stack.root / "notify.sock"), stack.url + "/")
    try:
        proc = foreground({"NOTIFY_SOCKET": listener.env_value, "WATCHDOG_USEC": "400000"})
        listener.wait("READY", proc)
        deadline = time.monotonic() + 30

        def pings() -> int:
            return sum(1 for m in listener.messages if m.fields.get("WATCHDOG") == "1")

        while pings() < 5 and time.monotonic() < deadline:
            listener.receive(timeout=0.5)
        assert pings() >= 5, listener.kinds()
        assert {m.pid for m in listener.messages} == {proc.pid}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        listener.close()


# -- systemd's file descriptor store ------------------------------------------------------


def receive_fds(sock: socket.socket, timeout: float) -> dict[str, int]:
    """FDSTORE=1 datagrams until ``timeout`` passes quietly: {FDNAME: fd received}."""
    stored: dict[str, int] = {}
    sock.settimeout(timeout)
    while True:
        try:
            data, ancdata, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(16 * 4))
        except (TimeoutError, BlockingIOError):
            return stored
        fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = array.array("i", payload[: len(payload) - len(payload) % 4])
                if fields.get("FDSTORE") == "1":
                    stored[fields["FDNAME"]] = fds[0]


def test_held_sockets_go_to_the_fd_store_and_a_restart_serves_on_them(
    stack: StackDir, foreground: Callable[[dict[str, str]], subprocess.Popen[bytes]],
) -> None:
    address = str(stack.root / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as store:
        store.bind(address)
        proc = foreground({"NOTIFY_SOCKET": address})
        wait_for(lambda: answers(stack.url + "/"), message="the first stack serving")
        stored = receive_fds(store, timeout=1.0)
    names = sorted(stored)
    assert names == sorted([
        f"uwsgi/127.0.0.1%3A{stack.uwsgi_port}", f"nginx/0.0.0.0%3A{stack.http_port}"
    ]) or names == sorted([
        f"uwsgi/127.0.0.1%3A{stack.uwsgi_port}", f"nginx/127.0.0.1%3A{stack.http_port}"
    ]), names
    # systemd after a crash: the service's processes are gone, the store keeps the fds
    proc.kill()
    proc.wait()
    for found in stackfiles.processes_under([stack.root]):
        found.kill()
    wait_for(lambda: not stackfiles.processes_under([stack.root]), message="stack gone")
    # the restarted service gets them as fd 3, 4 with their names (as systemd passes them)
    moves = " ".join(f"{3 + i}<&{stored[n]}" for i, n in enumerate(names))
    script = f'exec {moves}; LISTEN_PID=$$ exec "$@"'
    env = {**os.environ, **stack.env, "LISTEN_FDS": str(len(names)),
           "LISTEN_FDNAMES": ":".join(names)}
    env.pop("NOTIFY_SOCKET", None)
    with open(stack.root / "foreground.log", "ab") as log:
        second = subprocess.Popen(
            ["bash", "-c", script, "bash", sys.executable, "-m", "supervisor", "-c",
             str(stack.toml), "start", "--foreground"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
            pass_fds=tuple(stored.values()),
        )
    try:
        # we still hold the same listening sockets: a fresh bind by fnud would have failed
        wait_for(
            lambda: answers(stack.url + "/") or second.poll() is not None, timeout=60,
            message="the restart serving",
        )
        assert second.poll() is None, foreground_log(stack)
        assert "using inherited sockets" in (stack.root / "log" / "nginx.log").read_text()
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(60)
        for fd in stored.values():
            os.close(fd)


@needs_systemd_analyze
def test_render_for_a_user_on_port_80_with_awkward_paths(tmp_path: Path) -> None:
    users = [(p.pw_name, p.pw_uid) for p in pwd.getpwall() if p.pw_uid not in (0, 65534)]
    if not users:
        pytest.skip("no user but root and nobody in the passwd database")
    name, uid = users[0]
    base = Path("/srv/my app/100% $HOME")
    config = parse_config(
        '[fnud]\nruntime_dir = "/run/fnud-site"\nlog_dir = "/var/log/fnud-site"\n'
        '[health]\nurl = "http://127.0.0.1:80/health"\n',
        base / "fnud.toml",
    )
    text = unit.render(config, fnud_executable(), euid=uid)
    assert f"\nUser={name}\n" in text
    assert "\nAmbientCapabilities=CAP_NET_BIND_SERVICE\n" in text
    assert "\nRuntimeDirectory=fnud-site fnud-site-nginx\n" in text
    assert "\nLogsDirectory=fnud-site\n" in text
    assert "ReadWritePaths=-" not in text and "\nPrivateTmp=yes\n" in text
    quoted = '"/srv/my app/100%% $$HOME/fnud.toml"'
    assert exec_lines(text)["ExecStart"].endswith(f"-c {quoted} start --foreground")
    assert "\nWorkingDirectory=/srv/my app/100%% $HOME\n" in text
    assert verify(text, tmp_path) == ""
