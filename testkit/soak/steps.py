"""What production does to a stack, one step at a time, and what the model then expects.

Each step acts on the bed, asserts what fnud answered, and updates the model: which text
``GET /`` must answer afterwards, what `fnud rollback` would bring back, which texts must
never be served. ``bound`` is how many of the load client's requests the step may cost:
those in flight when something was killed, nothing otherwise.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from testkit.soak.bed import Bed
from testkit.stackdir import wait_for

CLIENTS = 4  # the load client's threads: at most this many requests are in flight
THREADS = 2  # per uWSGI worker (testkit's ini)


@dataclass
class Model:
    serving: str  # what GET / answers
    serving_dir: Path
    previous_dir: Path | None = None  # what fnud rollback goes back to
    never: set[str] = field(default_factory=set)  # refused releases


@dataclass
class Done:
    """What a step did: how many requests it may cost (the load client's, wrk's)."""

    bound: int = 0
    wrk_bound: int = 0
    note: str = ""


Step = Callable[[Bed, Model, random.Random], Done]


def _ok(result: subprocess.CompletedProcess[str], what: str) -> None:
    said = f"{result.stdout}{result.stderr}".strip()
    assert result.returncode == 0, f"{what}: exit {result.returncode}: {said}"


def good_release(bed: Bed, model: Model, rng: random.Random) -> Done:
    directory, text = bed.release()
    bed.point(directory)
    _ok(bed.stack.fnud("reload"), "fnud reload of a good release")
    model.previous_dir, model.serving_dir, model.serving = model.serving_dir, directory, text
    return Done(note=text)


def _refused_release(kind: str, word: str) -> Step:
    def step(bed: Bed, model: Model, rng: random.Random) -> Done:
        directory, text = bed.release(kind)
        bed.point(directory)
        result = bed.stack.fnud("reload")
        bed.point(model.serving_dir)  # the deploy tool puts the link back
        assert result.returncode == 1 and word in result.stderr, result.stderr
        model.never.add(text)
        return Done(note=result.stderr.strip())

    return step


broken_release = _refused_release("broken", "refused: app does not load")
unhealthy_release = _refused_release("unhealthy", "smoke check GET /health answered 500")
crashing_release = _refused_release("crashing", "failed: generation")


def rollback(bed: Bed, model: Model, rng: random.Random) -> Done:
    result = bed.stack.fnud("rollback")
    if model.previous_dir is None:
        assert result.returncode == 1 and "nothing to roll back to" in result.stderr, result
        return Done(note="nothing to roll back to")
    _ok(result, "fnud rollback")
    back = model.previous_dir
    model.previous_dir, model.serving_dir = model.serving_dir, back
    model.serving = bed.text_of(back)
    assert bed.pointed() == back, (bed.pointed(), back)
    return Done(note=f"back to {back.name}")


def _reloads(bed: Bed) -> int:
    return sum(bed.status().get("reloads", {}).values())


def sighup(bed: Bed, model: Model, rng: random.Random) -> Done:
    before = _reloads(bed)
    os.kill(bed.daemon(), signal.SIGHUP)
    wait_for(lambda: _reloads(bed) > before, timeout=60, message="SIGHUP's reload")
    state = bed.quiet()
    assert state["last_reload"]["result"] == "ok", state["last_reload"]
    model.previous_dir = model.serving_dir
    return Done()


def save(bed: Bed, model: Model, rng: random.Random) -> Done:
    before = _reloads(bed)
    text = f"{model.serving} saved {rng.randrange(10**6)}"
    bed.edit(text)
    wait_for(lambda: _reloads(bed) > before, timeout=60, message="the save's reload")
    state = bed.quiet()
    assert state["last_reload"]["result"] == "ok", state["last_reload"]
    model.previous_dir, model.serving = model.serving_dir, text
    return Done(note=text)


def reopen_logs(bed: Bed, model: Model, rng: random.Random) -> Done:
    result = bed.stack.fnud("reopen-logs")
    _ok(result, "fnud reopen-logs")
    assert "internal error" not in result.stdout + result.stderr
    return Done()


def _kill_and_wait(bed: Bed, program: str, victim: int, bound: int, wrk: int) -> Done:
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: (lambda p: p.get("state") == "RUNNING" and p.get("pid") != victim)(
        bed.status().get("programs", {}).get(program, {})), timeout=60,
        message=f"{program} replaced")
    return Done(bound=bound, wrk_bound=wrk, note=f"pid {victim}")


def kill_worker(bed: Bed, model: Model, rng: random.Random) -> Done:
    workers = bed.status()["programs"]["uwsgi"]["workers"]
    victim = rng.choice(workers)["pid"]
    os.kill(victim, signal.SIGKILL)
    def respawned() -> bool:
        now = bed.status()["programs"]["uwsgi"]["workers"]
        return victim not in {w["pid"] for w in now} and len(now) == len(workers)

    wait_for(respawned, timeout=60, message="the worker respawned")
    return Done(bound=THREADS, wrk_bound=THREADS, note=f"pid {victim}")


def kill_app_master(bed: Bed, model: Model, rng: random.Random) -> Done:
    master = bed.status()["programs"]["uwsgi"]["pid"]
    return _kill_and_wait(bed, "uwsgi", master, CLIENTS, 32)


def kill_nginx_master(bed: Bed, model: Model, rng: random.Random) -> Done:
    master = bed.status()["programs"]["nginx"]["pid"]
    return _kill_and_wait(bed, "nginx", master, CLIENTS, 32)


def _kill_daemon(bed: Bed) -> None:
    daemon = bed.daemon()
    os.kill(daemon, signal.SIGKILL)
    wait_for(lambda: not psutil.pid_exists(daemon)
             or psutil.Process(daemon).status() == psutil.STATUS_ZOMBIE, message="daemon gone")
    started = bed.stack.fnud("start")
    _ok(started, "fnud start after kill -9 of the daemon")
    assert "adopted" in started.stdout, started.stdout


def kill_daemon(bed: Bed, model: Model, rng: random.Random) -> Done:
    _kill_daemon(bed)
    return Done()


def kill_daemon_settling(bed: Bed, model: Model, rng: random.Random) -> Done:
    """A kill -9 of the daemon while a new generation settles: the new one keeps
    serving; the paused one is stopped (nothing of it left running)."""
    directory, text = bed.release()
    bed.point(directory)
    reload = subprocess.Popen([sys.executable, "-m", "supervisor", "-c", str(bed.stack.toml),
                               "reload"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: (bed.status().get("generation") or {}).get("state") == "settling",
                 timeout=60, message="the settle")
        _kill_daemon(bed)
    finally:
        reload.wait(timeout=120)
    model.serving_dir, model.serving = directory, text  # previous: not retired, unchanged
    wait_for(lambda: len(bed.app_masters()) == 1, timeout=60,
             message="the paused generation stopped")
    return Done(note=text)


def stop_worker(bed: Bed, model: Model, rng: random.Random) -> Done:
    """SIGSTOP a worker for a while: its requests wait, none fails."""
    victim = rng.choice(bed.status()["programs"]["uwsgi"]["workers"])["pid"]
    os.kill(victim, signal.SIGSTOP)
    try:
        threading.Event().wait(2.0)  # how long it stays stopped: the fault, not a sync
    finally:
        os.kill(victim, signal.SIGCONT)
    return Done(note=f"pid {victim}")


def full_disk(bed: Bed, model: Model, rng: random.Random) -> Done:
    """The log dir's disk full: the stack keeps serving, status says so; then space
    comes back and the logs go on."""
    if not bed.tmpfs:
        return Done(note="skipped: no tmpfs of its own (not root)")
    filler = bed.root / "log" / "filler"
    with open(filler, "wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
        except OSError:
            pass
    try:
        assert bed.stack.fnud("reopen-logs").returncode in (0, 1)
        state = wait_for(lambda: (lambda s: s if s.get("problems") else None)(bed.status()),
                         timeout=30, message="status to say the log disk is full")
        problems = state["problems"] if isinstance(state, dict) else None
        assert isinstance(problems, list) and any("full" in p for p in problems), problems
    finally:
        filler.unlink()
    wait_for(lambda: not bed.status().get("problems"), timeout=60,
             message="the problem to clear once space came back")
    return Done()


def flood_control(bed: Bed, model: Model, rng: random.Random) -> Done:
    """50 clients on the control socket at once: silent, truncated, garbage, real."""
    path = str(bed.stack.run / "fnud.sock")

    def client(kind: int) -> None:
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(10)
                sock.connect(path)
                if kind == 1:
                    sock.sendall(struct.pack(">I", 100) + b'{"cmd"')
                elif kind == 2:
                    sock.sendall(struct.pack(">I", 5) + b"\xff\xfe{[}")
                elif kind == 3:
                    body = b'{"cmd": "status", "args": {}}'
                    sock.sendall(struct.pack(">I", len(body)) + body)
                    sock.recv(65536)
                threading.Event().wait(0.5)
        except OSError:
            pass

    threads = [threading.Thread(target=client, args=(i % 4,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    _ok(bed.stack.fnud("status"), "fnud status after the flood")
    return Done()


STEPS: dict[str, Step] = {
    "good release": good_release, "broken release": broken_release,
    "unhealthy release": unhealthy_release, "crashing release": crashing_release,
    "rollback": rollback, "SIGHUP": sighup, "save": save, "reopen-logs": reopen_logs,
    "kill -9 worker": kill_worker, "kill -9 uWSGI master": kill_app_master,
    "kill -9 nginx master": kill_nginx_master, "kill -9 daemon": kill_daemon,
    "kill -9 daemon while settling": kill_daemon_settling, "SIGSTOP worker": stop_worker,
    "full log disk": full_disk, "control flood": flood_control,
}
