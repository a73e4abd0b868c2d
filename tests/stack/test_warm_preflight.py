"""The warm preflight against real interpreters: it proves what the cold one proves (a
fresh import of the app from the release, every time, in a process that never served),
is replaced when what it was started with changes, and falls back to cold when it must."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import sysconfig
from collections.abc import Awaitable, Callable
from pathlib import Path

import psutil
import pytest

from supervisor.appserver.spec import AppSpec
from supervisor.reload.preflight import PreflightError, preflight
from supervisor.reload.warm import WarmPreflight
from testkit.stackdir import StackDir, wait_for

APP = '''import json, os
with open(os.path.join(os.path.dirname(__file__), "imports.jsonl"), "a") as log:
    log.write(json.dumps({"pid": os.getpid(), "ppid": os.getppid()}) + "\\n")
import flask

app = flask.Flask(__name__)


@app.route("/")
def index():
    return "ok"
'''


@pytest.fixture
def release(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(APP)
    return tmp_path


def spec(chdir: Path, python: str = sys.executable, **kwargs: object) -> AppSpec:
    values: dict[str, object] = dict(python=python, chdir=str(chdir), pythonpath=(), env=(),
                                     module="app", wsgi_file="", callable="app")
    values.update(kwargs)
    return AppSpec(**values)  # type: ignore[arg-type]


def imports(release: Path) -> list[dict[str, int]]:
    lines = (release / "imports.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


Body = Callable[[WarmPreflight], Awaitable[None]]


def with_warm(body: Body) -> None:
    """Run ``body`` with a WarmPreflight on one event loop (its parent belongs to it)."""

    async def run() -> None:
        warm = WarmPreflight()
        try:
            await body(warm)
        finally:
            await warm.close()

    asyncio.run(run())


async def check(warm: WarmPreflight, app: AppSpec) -> str:
    return await warm.check(app, dict(os.environ), smoke=("/",))


def parent_pid(warm: WarmPreflight) -> int:
    assert warm.parent is not None
    return warm.parent.pid


def test_each_check_imports_the_app_afresh_in_a_forked_child(release: Path) -> None:
    parents: list[int] = []

    async def body(warm: WarmPreflight) -> None:
        first = await check(warm, spec(release))
        parents.append(parent_pid(warm))
        second = await check(warm, spec(release))
        assert first == second == str(release / "app.py")
        assert parent_pid(warm) == parents[0]
        assert warm.cold_reason == ""

    with_warm(body)
    seen = imports(release)
    assert len(seen) == 2  # imported again for each check: nothing cached of the app
    assert all(entry["ppid"] == parents[0] and entry["pid"] != parents[0] for entry in seen)


def test_a_broken_app_is_refused_with_file_and_line_like_the_cold_check(release: Path) -> None:
    async def body(warm: WarmPreflight) -> None:
        await check(warm, spec(release))  # warm it up
        (release / "app.py").write_text(APP + "\ndef broken(:\n")
        with pytest.raises(PreflightError) as warm_error:
            await check(warm, spec(release))
        with pytest.raises(PreflightError) as cold_error:
            await preflight(spec(release), dict(os.environ), smoke=("/",))
        assert str(warm_error.value) == str(cold_error.value)
        assert f"{release / 'app.py'}:13: SyntaxError" in str(warm_error.value)
        (release / "app.py").write_text(APP.replace('"ok"', '"ok"[5]'))
        with pytest.raises(PreflightError, match=r"smoke check GET / answered 500"):
            await check(warm, spec(release))

    with_warm(body)


def test_a_package_installed_replaces_the_warm_parent(tmp_path: Path) -> None:
    """A virtualenv of its own (the project's packages through a .pth file), where the
    test can install a package by making its dist-info."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "project.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    release = tmp_path / "release"
    release.mkdir()
    (release / "app.py").write_text(APP)
    app = spec(release, python=str(venv / "bin" / "python"))

    async def body(warm: WarmPreflight) -> None:
        await check(warm, app)
        first = parent_pid(warm)
        await check(warm, app)
        assert parent_pid(warm) == first
        (site / "newpkg-1.0.dist-info").mkdir()
        await check(warm, app)
        assert parent_pid(warm) != first

    with_warm(body)


def test_other_settings_replace_it_too(release: Path) -> None:
    async def body(warm: WarmPreflight) -> None:
        await check(warm, spec(release))
        first = parent_pid(warm)
        await check(warm, spec(release, env=(("APP_MODE", "test"),)))
        second = parent_pid(warm)
        assert second != first
        await check(warm, spec(release, env=(("APP_MODE", "test"),),
                               pythonpath=(str(release),)))
        assert parent_pid(warm) != second

    with_warm(body)


def test_a_release_shadowing_a_warm_module_is_checked_cold(release: Path) -> None:
    async def body(warm: WarmPreflight) -> None:
        await check(warm, spec(release))
        await check(warm, spec(release))  # the parent holds flask's dependencies now
        (release / "markupsafe.py").write_text("raise ImportError('vendored and broken')\n")
        with pytest.raises(PreflightError, match="vendored and broken"):
            await check(warm, spec(release))
        assert warm.cold_reason == "the release has its own 'markupsafe'"

    with_warm(body)


def test_a_dead_warm_parent_means_a_cold_check_then_a_new_parent(release: Path) -> None:
    async def body(warm: WarmPreflight) -> None:
        await check(warm, spec(release))
        dead = parent_pid(warm)
        os.kill(dead, signal.SIGKILL)
        assert await check(warm, spec(release)) == str(release / "app.py")
        await check(warm, spec(release))
        assert parent_pid(warm) != dead

    with_warm(body)


def _warm_parents(daemon: int) -> list[psutil.Process]:
    out = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if str(daemon) in cmdline and "-c" in cmdline and "def serve(" in " ".join(cmdline):
            out.append(proc)
    return out


def test_the_warm_parent_lives_and_dies_with_the_daemon(running: StackDir) -> None:
    daemon = int(running.status()["daemon"]["pid"])  # type: ignore[index]
    (parent,) = wait_for(lambda: _warm_parents(daemon), message="the warm parent")  # type: ignore[misc]
    running.set_greeting("Warm")
    assert running.fnud("reload", "--app").returncode == 0
    assert _warm_parents(daemon) == [parent]
    os.kill(daemon, signal.SIGKILL)
    wait_for(lambda: not parent.is_running() or parent.status() == psutil.STATUS_ZOMBIE,
             message="the warm parent to die with the daemon")
    assert running.fnud("start").returncode == 0  # adopts the stack
    new = int(running.status()["daemon"]["pid"])  # type: ignore[index]
    running.set_greeting("Warm again")
    assert running.fnud("reload", "--app").returncode == 0
    (again,) = _warm_parents(new)
    assert running.fnud("stop").returncode == 0
    wait_for(lambda: not again.is_running(), message="the warm parent to stop with fnud")


def test_checks_at_the_same_time_take_turns(release: Path) -> None:
    """The warm-up after a start and a reload's check may overlap: one parent, one
    conversation at a time."""
    async def body(warm: WarmPreflight) -> None:
        answers = await asyncio.gather(*(check(warm, spec(release)) for _ in range(3)))
        assert answers == [str(release / "app.py")] * 3

    with_warm(body)
