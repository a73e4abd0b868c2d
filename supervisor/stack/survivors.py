"""Programs a dead daemon left running: find them (adoption, checks) or stop them.

The daemon records the PIDs it runs in ``runtime_dir/state.json``. A recorded PID only
counts if that process's command line names this config's files, so a recycled PID of
some other process is never adopted, counted or killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

import psutil

from supervisor.config.schema import Config
from supervisor.runtime import state as state_file
from supervisor.runtime.state import ProgramRecord, StackState
from supervisor.stack.plan import app_server

NGINX = "nginx"


def programs(config: Config) -> tuple[str, ...]:
    """The programs this config runs, by the names state.json records them under."""
    return (NGINX,) if config.balancer else (app_server(config).name, NGINX)


def load(config: Config) -> StackState:
    return state_file.load(config.paths.state, programs(config))


def mark(name: str, config: Config) -> str:
    """What the command line of our app server's or nginx's master must contain."""
    if name == NGINX:
        return f"-c {config.nginx.conf}"
    return app_server(config).mark(config.paths)


def verified(name: str, record: ProgramRecord | None, config: Config) -> int:
    """PID of a still-running program from its record if it is really ours, else 0.

    Ours: created when we started it (PID and creation time together cannot be reused),
    or, lacking that, its command line names this config's files. (An app server can
    rewrite its command line, so that alone is not enough.)
    """
    if record is None:
        return 0
    try:
        proc = psutil.Process(record.pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return 0
        same_birth = abs(proc.create_time() - record.started) < 2.0
        cmdline = " ".join(proc.cmdline())
    except psutil.Error:
        return 0
    return record.pid if same_birth or mark(name, config) in cmdline else 0


def orphans(config: Config) -> dict[str, list[psutil.Process]]:
    """{program: workers whose master (one we started) is dead}: still in its process
    group, born after it. nginx's keep serving the listen port, so a new master could
    not bind."""
    state = load(config)
    found: dict[str, list[psutil.Process]] = {}
    for name, record in state.programs.items():
        if verified(name, record, config):
            continue  # the master lives: its workers are not orphans
        pgid, born = record.pid, record.started - 2.0
        if born < psutil.boot_time():
            continue  # a state file from before a reboot: those processes are long gone
        marked = mark(name, config)
        for proc in psutil.process_iter(["pid"]):
            with contextlib.suppress(psutil.Error, OSError):
                if (
                    os.getpgid(proc.pid) == pgid
                    and proc.create_time() >= born
                    and proc.status() != psutil.STATUS_ZOMBIE
                    and _looks_like(name, marked, proc)
                ):
                    found.setdefault(name, []).append(proc)
    return found


def _looks_like(name: str, marked: str, proc: psutil.Process) -> bool:
    """A worker of that program (a reused group number would hold something else)."""
    cmdline = proc.cmdline()
    text = f"{proc.name()} {' '.join(cmdline[:1])}".lower()
    return name in text or marked in " ".join(cmdline)


def reap_orphans(config: Config, grace: float = 2.0) -> int:
    """Each program's graceful signal to its orphans (nginx's SIGQUIT: finish the
    requests in flight; the app server's own), then SIGKILL after ``grace``."""
    graceful: dict[str, int] = {NGINX: signal.SIGQUIT}
    if not config.balancer:
        server = app_server(config)
        graceful[server.name] = server.orphan_signal
    found = orphans(config)
    procs = [proc for group in found.values() for proc in group]
    for name, group in found.items():
        for proc in group:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(graceful.get(name, signal.SIGQUIT))
    _gone, alive = psutil.wait_procs(procs, timeout=grace)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=grace)
    return sum(len(group) for group in orphans(config).values())


def find(config: Config) -> dict[str, int]:
    """{program: master pid} of this config's programs still running without a daemon."""
    state = load(config)
    found = {name: verified(name, state.programs.get(name), config) for name in programs(config)}
    return {name: pid for name, pid in found.items() if pid}


def strays(config: Config, keep: set[int]) -> list[psutil.Process]:
    """App server masters of this config (their command line names its rendered
    configs) that are not in ``keep``: generations a killed daemon left behind."""
    if config.balancer:
        return []
    prefix = app_server(config).mark(config.paths)
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if proc.pid in keep or prefix not in " ".join(proc.info["cmdline"] or []):
                continue
            parent = proc.parent()
            if parent is not None and prefix in " ".join(parent.cmdline()):
                continue  # a worker: its master is the stray
            if proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
    return found


def stop_strays(config: Config, keep: set[int], grace: float) -> list[int]:
    """Stop them: the server's stop-now signal, SIGKILL to their groups after ``grace``."""
    found = strays(config, keep)
    for proc in found:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(app_server(config).stray_signal)
    _gone, alive = psutil.wait_procs(found, timeout=grace)
    for proc in alive:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    return [proc.pid for proc in found]


def pids(config: Config) -> set[int]:
    """Survivor masters and their process groups (workers included)."""
    out: set[int] = set()
    for pid in find(config).values():
        out.add(pid)
        with contextlib.suppress(psutil.Error):
            out.update(child.pid for child in psutil.Process(pid).children(recursive=True))
    return out


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def stop(config: Config, timeout: float) -> dict[str, int]:
    """Stop survivors gracefully (nginx SIGQUIT first, then the app server's own way),
    SIGKILL their process groups after ``timeout``. Returns what was found."""
    reap_orphans(config)
    found = find(config)
    paths = config.paths
    if NGINX in found:
        with contextlib.suppress(ProcessLookupError):
            os.kill(found[NGINX], signal.SIGQUIT)
    server = app_server(config)
    if server.name in found and not config.balancer:
        server.stop_survivor(paths, load(config).generation, found[server.name])
    deadline = time.monotonic() + timeout
    while any(_group_alive(pid) for pid in found.values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in found.values():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    for pid in stop_strays(config, set(), 5.0):  # generations that were not serving
        found.setdefault(f"{server.name} generation (pid {pid})", pid)
    state_file.clear(paths.state)
    return found
