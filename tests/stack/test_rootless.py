"""fnud without root: nginx's listening socket bound by systemd (here its
systemd-socket-activate, as a fnud.socket unit would), then fnud, nginx and uWSGI all run
as one unprivileged user (setpriv drops to www-data before fnud's exec). fnud matches the
socket to nginx.conf's `listen` by its address."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from testkit import appuser, assets, stackfiles
from testkit.stackdir import EXAMPLE_APP, assert_no_leftovers, free_port, wait_for

_WHY = appuser.unavailable() or (
    "" if shutil.which("systemd-socket-activate") and shutil.which("setpriv")
    else "needs systemd-socket-activate and setpriv (Debian's systemd and util-linux)"
)
pytestmark = [pytest.mark.skipif(bool(_WHY), reason=_WHY or "runs")]

TOML = """\
[fnud]
runtime_dir = "run"
log_dir = "log"
stop_timeout = 10.0

[uwsgi]
ini = "uwsgi.ini"
binary = "{venv}/bin/uwsgi"

[nginx]
conf = "nginx.conf"

[health]
url = "http://127.0.0.1:{http_port}/health"

[reload]
settle = 1.0
"""


@pytest.fixture
def home() -> Iterator[Path]:
    """The user's whole stack: fnud.toml, ini, nginx.conf, the app, run and log dirs."""
    root = Path(tempfile.mkdtemp(prefix="fnud-rootless-"))
    root.chmod(0o755)
    home = root / "srv"
    try:
        yield home
    finally:
        assert_no_leftovers([root])
        shutil.rmtree(root, ignore_errors=True)


def lay_out(home: Path, venv: Path) -> int:
    http_port, app_port = free_port(), free_port()
    (home / "app").mkdir(parents=True)
    shutil.copy(EXAMPLE_APP, home / "app" / "app.py")
    ini = stackfiles.uwsgi_ini(app_port, 2).replace("chdir = %dapp", "chdir = %dapp")
    (home / "uwsgi.ini").write_text(ini + f"virtualenv = {venv}\nuid = www-data\n")
    (home / "nginx.conf").write_text(stackfiles.nginx_conf(http_port, app_port))
    (home / "fnud.toml").write_text(TOML.format(venv=venv, http_port=http_port))
    appuser.give(home)
    return http_port


def as_user(venv: Path, *argv: str) -> list[str]:
    return ["setpriv", "--reuid", appuser.APP_USER, "--regid", appuser.APP_USER,
            "--init-groups", f"{venv}/bin/fnud", *argv]


def serves(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def test_fnud_nginx_and_uwsgi_run_as_one_user_on_sockets_from_systemd(home: Path) -> None:
    venv = assets.fnud_venv()
    http_port = lay_out(home, venv)
    toml = str(home / "fnud.toml")
    check = subprocess.run(as_user(venv, "-c", toml, "check"), capture_output=True, text=True,
                           timeout=120, cwd="/")
    assert "mode: rootless" in check.stdout, check.stdout + check.stderr
    assert "uid = www-data' does nothing" in check.stdout
    with open(home.parent / "daemon.out", "wb") as out:
        daemon = subprocess.Popen(
            ["systemd-socket-activate", "-l", f"127.0.0.1:{http_port}",
             *as_user(venv, "-c", toml, "start", "--foreground")],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd="/",
            start_new_session=True,
        )
    try:
        wait_for(lambda: _listening(http_port), message="systemd-socket-activate to listen")
        with socket.create_connection(("127.0.0.1", http_port), timeout=5):
            pass  # its first connection starts fnud
        url = f"http://127.0.0.1:{http_port}/"
        wait_for(lambda: serves(url), timeout=60, message="the stack to serve")
        uids = {p.pid: p.uids().real for p in stackfiles.processes_under([home])}
        uids[daemon.pid] = psutil.Process(daemon.pid).uids().real
        assert set(uids.values()) == {appuser.uid()}, uids
        assert "using inherited sockets" in (home / "log" / "nginx.log").read_text()
        reload = subprocess.run(as_user(venv, "-c", toml, "reload"), capture_output=True,
                                text=True, timeout=120, cwd="/")
        assert reload.returncode == 0, reload.stdout + reload.stderr
        assert serves(url)
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
    assert daemon.returncode == 0, (home.parent / "daemon.out").read_text()[-2000:]


def _listening(port: int) -> bool:
    return any(
        c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN
        for c in psutil.net_connections("tcp")
    )
