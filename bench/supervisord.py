"""supervisord (from PyPI, in a throwaway venv) running the same two programs as fnud.

The venv lives in a bench temp dir, so it is deleted with the rest at the end. The
programs get the flags fnud adds: uWSGI ``--master-fifo``, ``--stats`` on a unix socket,
and its log written straight to a file (``--logto``, no ``--log-master``: fnud's default
``[uwsgi] log_master = false``); nginx ``-p PREFIX -e LOG -g 'daemon off;'``. supervisord
puts each program in its own process group; ``stop`` stops supervisord (which stops
them) and kills and reports whatever is still under the stack's dir afterwards.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.procs import Child, Processes, kill_under
from bench.stacks import (
    NGINX,
    NGINX_TEMP_DIRS,
    REPO,
    UWSGI,
    BenchError,
    StackFiles,
    clean_env,
    http_ok,
    tail,
)
from testkit.stackfiles import processes_under

SUPERVISORD_CONF = """\
; written by the bench: the same two programs fnud runs, with fnud's flags
[unix_http_server]
file = {root}/run/supervisor.sock
chmod = 0700

[supervisord]
nodaemon = true
logfile = {root}/log/supervisord.log
pidfile = {root}/run/supervisord.pid
childlogdir = {root}/log
loglevel = info

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl = unix://{root}/run/supervisor.sock

[program:uwsgi]
command = {uwsgi} --master-fifo {root}/run/uwsgi.fifo --ini {root}/uwsgi.ini --stats {root}/run/uwsgi-stats.sock --logto {root}/log/uwsgi.log
directory = {root}
priority = 10
autorestart = true
startsecs = 1
stopsignal = INT
stopwaitsecs = 20
stopasgroup = true
killasgroup = true
redirect_stderr = true
stdout_logfile = {root}/log/uwsgi.out

[program:nginx]
command = {nginx} -p {root}/run/nginx/ -c {root}/nginx.conf -e {root}/log/nginx.log -g "daemon off;"
directory = {root}
priority = 20
autorestart = true
startsecs = 1
stopsignal = QUIT
stopwaitsecs = 20
stopasgroup = true
killasgroup = true
redirect_stderr = true
stdout_logfile = {root}/log/nginx.out
"""  # noqa: E501 - supervisord's command lines cannot be wrapped


def _env() -> dict[str, str]:
    return clean_env("PYTHONPATH", "PYTHONHOME")


def install(venv: Path, procs: Processes) -> str:
    """``python -m venv VENV`` (fnud's interpreter) + ``pip install supervisor``, each in
    its own session (Ctrl-C stops pip's children too); the installed version."""
    _run_steps(venv, procs, ["supervisor"])
    version = subprocess.run([str(venv / "bin" / "supervisord"), "--version"],
                             capture_output=True, text=True, timeout=30, env=_env())
    return version.stdout.strip() or "?"


def install_fnud(venv: Path, procs: Processes) -> Path:
    """fnud as a user installs it: its wheel (built from this checkout, offline) with its
    dependencies from PyPI into a venv of fnud's interpreter; its `fnud` script."""
    dist = venv.parent / "dist"
    child = procs.spawn("build", [sys.executable, "-m", "build", "--no-isolation", "--wheel",
                                  "--outdir", str(dist), str(REPO)],
                        log=venv.parent / "build.log", env=_env())
    if child.proc.wait(timeout=300) != 0:
        raise BenchError(f"building fnud's wheel failed:\n{tail(venv.parent / 'build.log')}")
    procs.stop(child, timeout=2)
    (wheel,) = dist.glob("fnud-*.whl")
    _run_steps(venv, procs, [str(wheel)])
    return venv / "bin" / "fnud"


def _run_steps(venv: Path, procs: Processes, packages: list[str]) -> None:
    log = venv.parent / "install.log"
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
         "--no-cache-dir", *packages],
    ]
    for argv in steps:
        child = procs.spawn("install", argv, log=log, env=_env())
        try:
            code = child.proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            procs.stop(child, timeout=2)
        if code != 0:
            raise BenchError(f"{' '.join(argv)}: exit {code}:\n{tail(log)}")


def describe_conf() -> list[str]:
    """SUPERVISORD_CONF in short: a line per section (a program's command on a line of its
    own), paths as STACK/..., log and socket paths left out."""
    skip = ("logfile", "pidfile", "childlogdir", "directory", "serverurl", "file",
            "rpcinterface_factory")
    text = SUPERVISORD_CONF.format(root="STACK", uwsgi="uwsgi", nginx="nginx")
    lines: list[str] = []
    commands: dict[int, str] = {}
    for line in text.splitlines():
        if line.startswith("["):
            lines.append(line)
        elif "=" in line and not line.startswith(";") and lines:
            key, _, value = (part.strip() for part in line.partition("="))
            if key == "command":
                commands[len(lines) - 1] = value
            elif not key.endswith(skip):
                lines[-1] += f" {key}={value}"
    out: list[str] = []
    for i, line in enumerate(lines):
        out.append(line)
        if i in commands:
            out.append(f"    {commands[i]}")
    return out


class SupervisordStack:
    """``supervisord -n -c supervisord.conf`` started by the bench."""

    label = "supervisord"

    def __init__(self, files: StackFiles, venv: Path, procs: Processes) -> None:
        self.files = files
        self.venv = venv
        self.procs = procs
        self.child: Child | None = None
        self.start_seconds = 0.0

    @property
    def conf(self) -> Path:
        return self.files.root / "supervisord.conf"

    @property
    def url(self) -> str:
        return self.files.url

    @property
    def pid(self) -> int | None:
        return self.child.pid if self.child is not None else None

    def ctl_argv(self, *args: str) -> list[str]:
        return [str(self.venv / "bin" / "supervisorctl"), "-c", str(self.conf), *args]

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.ctl_argv(*args),
            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL, env=_env(),
        )

    def start(self) -> None:
        began = time.monotonic()
        root = self.files.root
        self.files.run.mkdir(mode=0o700, exist_ok=True)
        self.files.log.mkdir(exist_ok=True)
        for sub in ("logs", *(f"tmp/{name}" for name in NGINX_TEMP_DIRS)):
            (self.files.run / "nginx" / sub).mkdir(parents=True, exist_ok=True)
        self.conf.write_text(SUPERVISORD_CONF.format(root=root, uwsgi=UWSGI, nginx=NGINX))
        self.child = self.procs.spawn(
            "supervisord", [str(self.venv / "bin" / "supervisord"), "-n", "-c", str(self.conf)],
            cwd=root, log=self.files.log / "supervisord.out", env=_env(),
            stop_signal=signal.SIGTERM,
        )
        deadline = time.monotonic() + 60
        while not (http_ok(self.url + "health") and self.ctl("status").returncode == 0):
            if self.child.proc.poll() is not None or time.monotonic() > deadline:
                logs = "\n".join(tail(self.files.log / name, 10)
                                 for name in ("supervisord.log", "uwsgi.log", "nginx.log"))
                raise BenchError(f"supervisord stack did not come up: "
                                 f"{self.ctl('status').stdout}\n{logs}")
            time.sleep(0.1)
        self.start_seconds = time.monotonic() - began

    def stop(self) -> list[str]:
        """Stop supervisord (it stops nginx, then uWSGI); leftovers are killed, described."""
        if self.child is None:
            return []
        self.procs.stop(self.child, timeout=40)
        self.child = None
        deadline = time.monotonic() + 5
        while processes_under([self.files.root]) and time.monotonic() < deadline:
            time.sleep(0.1)
        return [f"left behind after supervisord stopped, killed: {what}"
                for what in kill_under([self.files.root])]
