"""A throwaway stack directory and the real CLI run against it, for tests that run the
real nginx and app server on 127.0.0.1.

Every stack lives in its own short temp dir (unix socket paths are limited to 108
bytes) with ports picked free at runtime. ``assert_no_leftovers`` fails when a process
a stack started is still alive.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from testkit import stackfiles

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_APP = ROOT / "example" / "app.py"


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port nothing listens on now, and never one this process handed out before: the
    kernel may pick the same free port twice in a row (a stack once got its app's port
    for nginx too)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def wait_for(
    condition: Callable[[], object], timeout: float = 20.0, interval: float = 0.05,
    message: str = "condition",
) -> object:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


FNUD_TOML = """\
[fnud]
runtime_dir = "run"
log_dir = "log"
stop_timeout = {stop_timeout}
start_timeout = {start_timeout}
allow_root = {allow_root}

[uwsgi]
ini = "uwsgi.ini"
reload_timeout = {reload_timeout}
reload = "{reload_mode}"

[nginx]
conf = "nginx.conf"
reload_timeout = 15.0

[health]
url = "http://127.0.0.1:{http_port}/health"
{health}

[reload]
settle = {settle}

[backoff]
initial = {backoff_initial}
max = {backoff_max}
quick_failures = {quick_failures}
quick_seconds = {quick_seconds}
cooldown = {cooldown}
{extra_toml}
"""


#: appended to a stack's app by ``StackDir.add_hold_route``: GET /hold answers only once
#: ``hold.release`` exists beside the app (or after 120 s), so a request stays in flight
#: for exactly as long as a test needs it to, whatever the machine's load
HOLD_ROUTE = """

@app.route("/hold")
def hold() -> dict[str, bool]:
    import pathlib as _pathlib
    import time as _time

    release = _pathlib.Path(__file__).with_name("hold.release")
    deadline = _time.monotonic() + 120.0
    while not release.exists() and _time.monotonic() < deadline:
        _time.sleep(0.05)
    return {"released": release.exists()}
"""


class InFlight:
    """One request running in a thread: ``answer`` is (status, body), or (0, error name)
    when the connection was cut."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        self.answer: tuple[int, bytes | str] | None = None
        self.thread = threading.Thread(target=self._get)

    def _get(self) -> None:
        try:
            with urllib.request.urlopen(self.url, timeout=self.timeout) as response:
                self.answer = (response.status, response.read())
        except OSError as exc:  # urllib's HTTPError is an OSError too
            self.answer = (0, type(exc).__name__)

    def result(self) -> tuple[int, bytes | str]:
        self.thread.join(timeout=self.timeout + 10)
        assert self.answer is not None, f"{self.url} never finished"
        return self.answer


@dataclass
class StackDir(stackfiles.StackLayout):
    root: Path
    http_port: int
    uwsgi_port: int  # the app server's port (uWSGI's socket, gunicorn's bind)
    env: dict[str, str] = field(default_factory=dict)
    server: str = "uwsgi"  # the app server's program name

    @property
    def app_port(self) -> int:
        return self.uwsgi_port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def fnud(
        self, *args: str, timeout: float = 120.0, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the real CLI (as a user would) and capture its output."""
        full_env = {**os.environ, **self.env, **(env or {})}
        return subprocess.run(
            [sys.executable, "-m", "supervisor", "-c", str(self.toml), *args],
            capture_output=True, text=True, timeout=timeout, env=full_env,
            stdin=subprocess.DEVNULL,
        )

    def start(self) -> subprocess.CompletedProcess[str]:
        result = self.fnud("start")
        assert result.returncode == 0, f"start failed: {result.stdout}{result.stderr}"
        return result

    def status(self) -> dict[str, object]:
        result = self.fnud("status", "--json")
        return dict(json.loads(result.stdout))

    def programs(self) -> dict[str, Any]:
        programs: dict[str, Any] = json.loads(self.fnud("status", "--json").stdout)["programs"]
        return programs

    def generation(self) -> dict[str, Any]:
        """What `fnud status --json` says of the serving generation (number, state...)."""
        status = json.loads(self.fnud("status", "--json").stdout)
        generation: dict[str, Any] = status["generation"]
        return generation

    def body(self, path: str = "/") -> bytes:
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return bytes(response.read())

    def master_pid(self) -> int:
        """The serving app server master's PID."""
        return int(self.programs()[self.server]["pid"])

    def worker_pids(self, program: str = "") -> set[int]:
        return {w["pid"] for w in self.programs()[program or self.server]["workers"]}

    def serving(self) -> bool:
        """GET / through nginx answers 200."""
        try:
            with urllib.request.urlopen(self.url + "/", timeout=5) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def request_in_flight(self, seconds: float) -> InFlight:
        """GET /sleep?s=SECONDS in a thread; return once an app server worker is busy
        with it (uWSGI says so; a gunicorn worker is seen sleeping in the app)."""
        flight = InFlight(f"{self.url}/sleep?s={seconds:g}", seconds + 60)
        flight.thread.start()
        wait_for(self._busy, message="the slow request to reach a worker")
        return flight

    def add_hold_route(self) -> None:
        """GET /hold in the app (HOLD_ROUTE): before the start, or before a reload."""
        self.app.write_text(self.app.read_text() + HOLD_ROUTE)

    def request_held(self) -> InFlight:
        """GET /hold in a thread; return once an app server worker is busy with it. It
        is answered after ``release_held()``."""
        flight = InFlight(f"{self.url}/hold", 180)
        flight.thread.start()
        wait_for(self._busy, message="the held request to reach a worker")
        return flight

    def release_held(self) -> None:
        """Every held request (and each one to come) is answered."""
        (self.app.parent / "hold.release").write_text("")

    def _busy(self) -> bool:
        workers = self.programs()[self.server]["workers"]
        if self.server == "uwsgi":
            return any(w["status"] == "busy" for w in workers)
        return any(_sleeping_in_python(w["pid"]) for w in workers)

    def set_greeting(self, text: str) -> None:
        source = self.app.read_text()
        start = source.index('GREETING = "')
        end = source.index('"', start + len('GREETING = "'))
        self.app.write_text(source[:start] + f'GREETING = "{text}' + source[end:])

    def generation_files(self) -> dict[str, int]:
        """The numbered files in the runtime dir that generations run by (rendered
        configs, fifos, sockets, event files): name -> the generation it belongs to."""
        run = self.root / "run"
        found = [*run.glob(f"{self.server}-*"), *(run / self.server).glob("*-[0-9]*")]
        numbers = (re.search(r"-(\d+)\.", path.name) for path in found)
        return {p.name: int(m.group(1)) for p, m in zip(found, numbers, strict=True) if m}

    def daemon_log(self) -> str:
        path = self.root / "log" / "fnud.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _sleeping_in_python(pid: int) -> bool:
    """A thread of gunicorn worker ``pid`` is in time.sleep (the app's /sleep), not in
    the worker's own waits (select, poll, epoll)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for task in tasks:
        try:
            fields = Path(f"/proc/{pid}/task/{task}/syscall").read_text().split()
        except OSError:
            continue
        if fields and fields[0] in ("230", "35"):  # x86_64 clock_nanosleep, nanosleep
            return True
    return False


GUNICORN_TOML = """\
[fnud]
runtime_dir = "run"
log_dir = "log"
stop_timeout = {stop_timeout}
start_timeout = {start_timeout}
allow_root = {allow_root}

[gunicorn]
app = "{app}"
chdir = "app"
python = "{python}"
bind = "127.0.0.1:{app_port}"
workers = {workers}
threads = {threads}
conf = "gunicorn.conf.py"

[nginx]
conf = "nginx.conf"
reload_timeout = 15.0

[health]
url = "http://127.0.0.1:{http_port}/health"
{health}

[reload]
settle = {settle}

[backoff]
initial = {backoff_initial}
max = {backoff_max}
quick_failures = {quick_failures}
quick_seconds = {quick_seconds}
cooldown = {cooldown}
{extra_toml}
"""


def make_gunicorn_stack_dir(
    workers: int = 3,
    threads: int = 1,
    stop_timeout: float = 10.0,
    quick_failures: int = 3,
    cooldown: float = 0.0,
    extra_conf: str = "",
    extra_toml: str = "",
    health: str = "",
    start_timeout: float = 30.0,
    allow_root: bool = True,
    backoff_initial: float = 0.2,
    settle: float = 1.0,
    app: str = "app:app",
    quick_seconds: float = 3.0,
) -> StackDir:
    """Like make_stack_dir, with gunicorn as the app server: the example app from
    ``<root>/app`` under ``python -m gunicorn`` from this interpreter (gunicorn is one
    of fnud's test dependencies), nginx proxying HTTP to its bind."""
    root = Path(tempfile.mkdtemp(prefix="fnud-"))
    root.chmod(0o755)
    stack = StackDir(root, free_port(), free_port(), server="gunicorn")
    (root / "app").mkdir()
    shutil.copy(EXAMPLE_APP, root / "app" / "app.py")
    stack.gunicorn_conf.write_text(stackfiles.gunicorn_conf(extra_conf))
    stack.nginx_conf.write_text(stackfiles.gunicorn_nginx_conf(stack.http_port, stack.app_port))
    stack.toml.write_text(GUNICORN_TOML.format(
        app=app, python=sys.executable, app_port=stack.app_port, http_port=stack.http_port,
        workers=workers, threads=threads, stop_timeout=stop_timeout,
        start_timeout=start_timeout, allow_root=str(allow_root).lower(), health=health,
        settle=settle, backoff_initial=backoff_initial, backoff_max=max(2.0, backoff_initial),
        quick_failures=quick_failures, cooldown=cooldown, extra_toml=extra_toml,
        quick_seconds=quick_seconds,
    ))
    return stack


def make_stack_dir(
    processes: int = 3,
    stop_timeout: float = 10.0,
    quick_failures: int = 3,
    cooldown: float = 0.0,
    extra_ini: str = "",
    extra_toml: str = "",
    health: str = "",
    start_timeout: float = 30.0,
    allow_root: bool = True,
    backoff_initial: float = 0.2,
    reload_timeout: float = 60.0,
    settle: float = 1.0,
    reload_mode: str = "generation",
    quick_seconds: float = 3.0,  # a crash sooner after a start counts as quick (backoff)
) -> StackDir:
    root = Path(tempfile.mkdtemp(prefix="fnud-"))
    root.chmod(0o755)  # like /etc/fnud: nginx's workers (nobody, as root) must traverse it
    stack = StackDir(root, free_port(), free_port())
    (root / "app").mkdir()
    shutil.copy(EXAMPLE_APP, root / "app" / "app.py")
    values = {
        "uwsgi_port": stack.uwsgi_port, "http_port": stack.http_port, "processes": processes,
        "stop_timeout": stop_timeout, "quick_failures": quick_failures, "cooldown": cooldown,
        "extra_ini": extra_ini, "extra_toml": extra_toml, "health": health,
        "start_timeout": start_timeout, "allow_root": str(allow_root).lower(),
        "backoff_initial": backoff_initial, "backoff_max": max(2.0, backoff_initial),
        "reload_timeout": reload_timeout, "settle": settle,
        "reload_mode": reload_mode, "quick_seconds": quick_seconds,
    }
    stack.ini.write_text(stackfiles.uwsgi_ini(
        stack.uwsgi_port, processes, extra_ini=extra_ini, lazy=reload_mode == "chain"
    ))
    stack.nginx_conf.write_text(stackfiles.nginx_conf(stack.http_port, stack.uwsgi_port))
    stack.toml.write_text(FNUD_TOML.format(**values))
    return stack


def assert_no_leftovers(roots: list[Path], timeout: float = 10.0) -> None:
    """Wait for the stacks' processes to be gone; kill and fail if some stay."""
    leaked: set[int] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leaked = {proc.pid for proc in stackfiles.processes_under(roots)}
        if not leaked:
            return
        time.sleep(0.1)
    described = []
    for pid in leaked:
        try:
            proc = psutil.Process(pid)
            described.append(f"{pid} {' '.join(proc.cmdline())[:80]}")
            proc.kill()
        except psutil.Error:
            pass
    pytest.fail(f"processes left behind: {described}")


WATCH_TOML = """
[watch]
enabled = true
"""


@contextlib.contextmanager
def cleaned_up(stacks: list[StackDir]) -> Iterator[None]:
    """Whatever happens inside: stop every stack in ``stacks`` (read at the end, so a
    factory may add to it), check that nothing of theirs runs, remove their dirs."""
    try:
        yield
    finally:
        for stack in stacks:
            stack.fnud("stop", timeout=60)
        try:
            assert_no_leftovers([stack.root for stack in stacks])
        finally:
            for stack in stacks:
                shutil.rmtree(stack.root, ignore_errors=True)
