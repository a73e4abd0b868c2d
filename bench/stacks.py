"""The three things the bench loads: the stack under fnud, the same stack by hand, flask run.

All of them serve a copy of example/app.py from their own short temp dir (unix socket
paths must stay under 108 bytes) on ports picked free at runtime. The uWSGI ini and the
nginx.conf are the same text for the fnud stack and the hand-started one: 4 processes x
2 threads, lazy-apps, ``disable-logging = true``, nginx ``access_log off``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bench.procs import Child, Processes, free_port, kill_under
from supervisor.uwsgi import fifo
from testkit import stackfiles
from testkit.stackfiles import processes_under

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_APP = REPO / "example" / "app.py"
VENV_BIN = Path(sys.executable).parent
UWSGI = str(VENV_BIN / "uwsgi")
FLASK = str(VENV_BIN / "flask")
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin") or "nginx"
NGINX_TEMP_DIRS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")

FNUD_TOML = """\
[fnud]
runtime_dir = "run"
log_dir = "log"
stop_timeout = 20.0
start_timeout = 60.0
# the bench runs as root in the dev container, and the hand-started stack (same ini, no
# uid) runs the app as root too: without this fnud refuses to start as root
allow_root = true

[uwsgi]
ini = "uwsgi.ini"
reload_timeout = 60.0
{uwsgi_reload}
[nginx]
conf = "nginx.conf"
reload_timeout = 15.0

[health]
url = "http://127.0.0.1:{http_port}/health"
{reload_table}"""


class BenchError(Exception):
    pass


def clean_env(*drop_prefixes: str) -> dict[str, str]:
    """os.environ without what would change the children's behaviour."""
    drop = ("UWSGI_", "NOTIFY_SOCKET", "WATCHDOG_", "LISTEN_", "FNUD_", *drop_prefixes)
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= int(response.status) < 400
    except (OSError, urllib.error.HTTPError):
        return False


def tail(path: Path, lines: int = 25) -> str:
    if not path.exists():
        return f"({path} does not exist)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass(frozen=True)
class StackFiles(stackfiles.StackLayout):
    """uwsgi.ini + nginx.conf (+ fnud.toml) + app/app.py in one temp dir."""

    root: Path
    http_port: int
    uwsgi_port: int
    processes: int
    threads: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/"

    @classmethod
    def create(
        cls, root: Path, processes: int, threads: int, *, reload_mode: str | None = None,
        settle: float | None = None, extra_ini: str = "",
    ) -> StackFiles:
        """``reload_mode`` ([uwsgi] reload) and ``settle`` ([reload] settle) are left to
        fnud's defaults when None; ``extra_ini`` is appended to the uWSGI ini."""
        files = cls(root, free_port(), free_port(), processes, threads)
        (root / "app").mkdir()
        shutil.copy(EXAMPLE_APP, root / "app" / "app.py")
        values = {
            "uwsgi_port": files.uwsgi_port, "http_port": files.http_port,
            "processes": processes, "threads": threads,
            "uwsgi_reload": f'reload = "{reload_mode}"\n' if reload_mode else "",
            "reload_table": "" if settle is None else f"\n[reload]\nsettle = {float(settle)!r}\n",
        }
        files.ini.write_text(
            stackfiles.uwsgi_ini(files.uwsgi_port, processes, threads, extra_ini)
        )
        files.nginx_conf.write_text(stackfiles.nginx_conf(files.http_port, files.uwsgi_port))
        files.toml.write_text(FNUD_TOML.format(**values))
        return files


class Target(Protocol):
    """Something serving the example app on 127.0.0.1."""

    label: str
    start_seconds: float

    @property
    def url(self) -> str: ...


@dataclass(frozen=True)
class ReloadOutcome:
    ok: bool
    seconds: float | None  # time until the reload was complete (None: not seen)
    detail: str = ""


# -- fnud ------------------------------------------------------------------------------


class FnudStack:
    """The stack started and reloaded through the real ``fnud`` CLI (detached daemon)."""

    label = "fnud"

    def __init__(self, files: StackFiles) -> None:
        self.files = files
        self.started = False
        self.start_seconds = 0.0

    @property
    def url(self) -> str:
        return self.files.url

    @property
    def daemon_log(self) -> Path:
        return self.files.log / "fnud.log"

    def cli(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "supervisor", "-c", str(self.files.toml), *args],
            capture_output=True, text=True, timeout=timeout, env=clean_env(),
            stdin=subprocess.DEVNULL,
        )

    def start(self) -> None:
        began = time.monotonic()
        self.started = True  # even a failed start may have left a daemon to stop
        result = self.cli("start", timeout=120)
        self.start_seconds = time.monotonic() - began
        if result.returncode != 0:
            raise BenchError(
                f"fnud start failed (exit {result.returncode}) in {self.start_seconds:.1f}s:\n"
                f"{result.stdout}{result.stderr}\n--- {self.daemon_log} ---\n"
                f"{tail(self.daemon_log)}"
            )

    def status(self) -> dict[str, Any]:
        result = self.cli("status", "--json", timeout=30)
        return dict(json.loads(result.stdout or "{}"))

    def worker_pids(self) -> set[int]:
        state = self.status()
        app = (state.get("app") or {}).get("program", "uwsgi")
        return {int(w["pid"]) for w in state.get("programs", {}).get(app, {}).get("workers", [])}

    def reload_app(self) -> ReloadOutcome:
        """``fnud reload --app``: timed from the CLI's start to its exit."""
        began = time.monotonic()
        result = self.cli("reload", "--app", timeout=180)
        seconds = time.monotonic() - began
        lines = (result.stdout + result.stderr).strip().splitlines()
        detail = lines[-1] if lines else ""
        if result.returncode != 0:
            detail = f"exit {result.returncode}: " + " | ".join(lines[-5:])
        return ReloadOutcome(result.returncode == 0, seconds, detail)

    def stop(self) -> list[str]:
        """``fnud stop``; anything it left behind is killed and returned (described)."""
        if not self.started:
            return []
        self.started = False
        problems = []
        try:
            result = self.cli("stop", timeout=90)
            if result.returncode != 0:
                problems.append(f"fnud stop exit {result.returncode}: {result.stderr.strip()}")
        except subprocess.TimeoutExpired:
            problems.append("fnud stop timed out after 90s")
        deadline = time.monotonic() + 5
        while processes_under([self.files.root]) and time.monotonic() < deadline:
            time.sleep(0.1)
        problems += [f"left behind after fnud stop, killed: {what}"
                     for what in kill_under([self.files.root])]
        return problems


# -- by hand ---------------------------------------------------------------------------


def read_stats(path: Path, timeout: float = 2.0) -> dict[str, Any]:
    """The uWSGI stats server's JSON (sent on connect)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return dict(json.loads(b"".join(chunks)))


def write_fifo(path: Path, letter: str, timeout: float = 5.0) -> None:
    """What ``echo c > fifo`` does, without blocking forever when the master has no
    reader: fnud's own fifo writer, run to completion."""
    asyncio.run(fifo.write_fifo(path, letter, timeout))


class HandStack:
    """The same ini and conf started directly, the user's old way (no fnud).

    ``uwsgi --ini uwsgi.ini --master-fifo run/uwsgi.fifo --stats run/stats.sock`` and
    ``nginx -p run/nginx/ -c nginx.conf -e stderr -g 'daemon off;'``, each in its own
    session. The fifo and the stats socket are for the reload section: the stats socket
    tells the bench when a raw reload is complete (nothing polls it in steady windows).
    """

    label = "by hand"

    def __init__(self, files: StackFiles, procs: Processes) -> None:
        self.files = files
        self.procs = procs
        self.uwsgi: Child | None = None
        self.nginx: Child | None = None
        self.start_seconds = 0.0

    @property
    def url(self) -> str:
        return self.files.url

    @property
    def fifo(self) -> Path:
        return self.files.run / "uwsgi.fifo"

    @property
    def stats_socket(self) -> Path:
        return self.files.run / "stats.sock"

    def start(self) -> None:
        began = time.monotonic()
        files = self.files
        prefix = files.run / "nginx"
        for sub in ("logs", *(f"tmp/{name}" for name in NGINX_TEMP_DIRS)):
            (prefix / sub).mkdir(parents=True, exist_ok=True)
        files.log.mkdir(exist_ok=True)
        self.uwsgi = self.procs.spawn(
            "uwsgi",
            [UWSGI, "--ini", str(files.ini), "--master-fifo", str(self.fifo),
             "--stats", str(self.stats_socket)],
            cwd=files.root, log=files.log / "uwsgi.log", env=clean_env(),
            stop_signal=signal.SIGINT,
        )
        self._wait(lambda: self.workers_ready(set()), "uWSGI workers accepting",
                   files.log / "uwsgi.log")
        self.nginx = self.procs.spawn(
            "nginx",
            [NGINX, "-p", f"{prefix}/", "-c", str(files.nginx_conf), "-e", "stderr",
             "-g", "daemon off;"],
            cwd=files.root, log=files.log / "nginx.log", env=clean_env(),
            stop_signal=signal.SIGQUIT,
        )
        self._wait(lambda: http_ok(self.url + "health"), "nginx answering",
                   files.log / "nginx.log")
        self.start_seconds = time.monotonic() - began

    def _wait(self, ready: Any, what: str, log: Path, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            dead = [c.name for c in (self.uwsgi, self.nginx)
                    if c is not None and c.proc.poll() is not None]
            if dead or time.monotonic() > deadline:
                why = f"{', '.join(dead)} exited" if dead else f"timed out after {timeout}s"
                raise BenchError(f"hand-started stack: {why} waiting for {what}:\n{tail(log)}")
            time.sleep(0.05)

    def stats(self) -> dict[str, Any] | None:
        try:
            return read_stats(self.stats_socket)
        except (OSError, ValueError):
            return None  # during a graceful reload the master re-execs itself

    def worker_pids(self) -> set[int]:
        stats = self.stats()
        return {int(w["pid"]) for w in stats["workers"]} if stats else set()

    def workers_ready(self, old_pids: set[int]) -> bool:
        """Every worker is new (not in ``old_pids``), accepting and has the app loaded."""
        stats = self.stats()
        if stats is None:
            return False
        workers = stats.get("workers", [])
        return len(workers) == self.files.processes and all(
            w.get("pid") and w["pid"] not in old_pids and w.get("accepting") == 1
            and w.get("apps") for w in workers
        )

    def raw_reload(self, letter: str, timeout: float = 60.0) -> ReloadOutcome:
        """Write ``letter`` to the master fifo; time until every worker is new and accepting."""
        before = self.worker_pids()
        began = time.monotonic()
        try:
            write_fifo(self.fifo, letter)
        except OSError as exc:
            return ReloadOutcome(False, None, f"fifo: {exc}")
        deadline = began + timeout
        while time.monotonic() < deadline:
            if self.workers_ready(before):
                return ReloadOutcome(True, time.monotonic() - began)
            time.sleep(0.02)
        return ReloadOutcome(False, None, f"workers not all new after {timeout}s")

    def stop(self) -> None:
        for child in (self.nginx, self.uwsgi):
            if child is not None:
                self.procs.stop(child)
        self.nginx = self.uwsgi = None


# -- flask run -------------------------------------------------------------------------


class FlaskDev:
    """``flask --app app run --with-threads`` (Werkzeug dev server), request log to a file."""

    label = "flask run"

    def __init__(self, root: Path, procs: Processes) -> None:
        self.root = root
        self.procs = procs
        self.port = free_port()
        self.child: Child | None = None
        self.start_seconds = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> None:
        began = time.monotonic()
        app_dir = self.root / "app"
        app_dir.mkdir(exist_ok=True)
        shutil.copy(EXAMPLE_APP, app_dir / "app.py")
        log = self.root / "flask.log"
        self.child = self.procs.spawn(
            "flask",
            [FLASK, "--app", "app", "run", "--host", "127.0.0.1", "--port", str(self.port),
             "--with-threads", "--no-reload", "--no-debugger"],
            cwd=app_dir, log=log, env=clean_env("FLASK_"), stop_signal=signal.SIGTERM,
        )
        deadline = time.monotonic() + 30
        while not http_ok(self.url + "health"):
            if self.child.proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"flask run did not come up:\n{tail(log)}")
            time.sleep(0.05)
        self.start_seconds = time.monotonic() - began

    def stop(self) -> None:
        if self.child is not None:
            self.procs.stop(self.child)
            self.child = None
