"""Programs a dead daemon left running: find them (adoption, checks) or stop them.

The daemon records the PIDs it runs in ``runtime_dir/state.json``. A recorded PID only
counts if that process's command line names this config's files, so a recycled PID of
some other process is never adopted, counted or killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from typing import Any

import psutil

from supervisor.config.schema import Config
from supervisor.runtime.paths import Paths
from supervisor.uwsgi import driver as uwsgi


def load_state(paths: Paths) -> dict[str, Any]:
    try:
        data = json.loads(paths.state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def mark(name: str, config: Config) -> str:
    """What the command line of our uWSGI or nginx master must contain."""
    if name == "uwsgi":
        return Paths.from_config(config).rendered_ini_prefix
    return f"-c {config.nginx.conf}"


def _started(entry: Any) -> float:
    value = entry.get("started") if isinstance(entry, dict) else None
    return float(value) if isinstance(value, (int, float)) else 0.0


def verified(name: str, entry: Any, config: Config) -> int:
    """PID of a still-running program from a state entry if it is really ours, else 0.

    Ours: created when we started it (PID and creation time together cannot be reused),
    or, lacking that, its command line names this config's files. (uWSGI's procname
    options rewrite the command line, so that alone is not enough.)
    """
    if not isinstance(entry, dict) or not isinstance(entry.get("pid"), int):
        return 0
    pid = int(entry["pid"])
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return 0
        same_birth = abs(proc.create_time() - _started(entry)) < 2.0
        cmdline = " ".join(proc.cmdline())
    except psutil.Error:
        return 0
    return pid if same_birth or mark(name, config) in cmdline else 0


def orphans(config: Config) -> list[psutil.Process]:
    """Workers whose master (one we started) is dead: still in its process group, born
    after it. nginx's keep serving the listen port, so a new master could not bind."""
    state = load_state(Paths.from_config(config))
    found: list[psutil.Process] = []
    for name in ("uwsgi", "nginx"):
        entry = state.get(name)
        if not isinstance(entry, dict) or not isinstance(entry.get("pid"), int):
            continue
        if verified(name, entry, config):
            continue  # the master lives: its workers are not orphans
        pgid, born = int(entry["pid"]), _started(entry) - 2.0
        if born < psutil.boot_time():
            continue  # a state file from before a reboot: those processes are long gone
        for proc in psutil.process_iter(["pid"]):
            with contextlib.suppress(psutil.Error, OSError):
                if (
                    os.getpgid(proc.pid) == pgid
                    and proc.create_time() >= born
                    and proc.status() != psutil.STATUS_ZOMBIE
                    and _looks_like(name, proc)
                ):
                    found.append(proc)
    return found


def _looks_like(name: str, proc: psutil.Process) -> bool:
    """A worker of that program (a reused group number would hold something else)."""
    text = f"{proc.name()} {' '.join(proc.cmdline()[:1])}".lower()
    return name in text


def reap_orphans(config: Config, grace: float = 2.0) -> int:
    """SIGQUIT (nginx: finish the requests in flight), then SIGKILL after ``grace``."""
    procs = orphans(config)
    for sig in (signal.SIGQUIT, signal.SIGKILL):
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(sig)
        _gone, procs = psutil.wait_procs(procs, timeout=grace)
        if not procs:
            break
    return len(orphans(config))


def find(config: Config) -> dict[str, int]:
    """{program: master pid} of this config's programs still running without a daemon."""
    state = load_state(Paths.from_config(config))
    found = {name: verified(name, state.get(name), config) for name in ("uwsgi", "nginx")}
    return {name: pid for name, pid in found.items() if pid}


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
    """Stop survivors gracefully (nginx SIGQUIT first, then uWSGI's 'q'), SIGKILL their
    process groups after ``timeout``. Returns what was found."""
    reap_orphans(config)
    found = find(config)
    paths = Paths.from_config(config)
    if "nginx" in found:
        with contextlib.suppress(ProcessLookupError):
            os.kill(found["nginx"], signal.SIGQUIT)
    if "uwsgi" in found:
        try:
            generation = load_state(paths).get("generation", 1)
            fifo = paths.uwsgi_fifo(generation if isinstance(generation, int) else 1)
            asyncio.run(uwsgi.write_fifo(fifo, uwsgi.GRACEFUL_STOP, timeout=2.0))
        except OSError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(found["uwsgi"], signal.SIGINT)
    deadline = time.monotonic() + timeout
    while any(_group_alive(pid) for pid in found.values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in found.values():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(FileNotFoundError):
        paths.state.unlink()
    return found
