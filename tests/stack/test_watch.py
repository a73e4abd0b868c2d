"""Save the code, see it live: file-change reloads against the real stack."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from testkit.load import Load
from testkit.stackdir import WATCH_TOML, StackDir, wait_for


def reloads(stack: StackDir) -> dict[str, int]:
    return stack.status()["reloads"]  # type: ignore[return-value]


def settled(stack: StackDir) -> dict[str, Any] | None:
    """Status once no change is debouncing and no reload is queued or running."""
    state = stack.status()
    return None if state["watch"]["pending"] else state  # type: ignore[index]


@pytest.fixture
def watched(stack_factory: Callable[..., StackDir]) -> StackDir:
    stack = stack_factory(extra_toml=WATCH_TOML)
    stack.start()
    assert stack.status()["watch"] == {"enabled": True, "mode": "inotify", "pending": False}
    return stack


def test_saved_change_reaches_every_worker_without_a_failed_request(watched: StackDir) -> None:
    with Load(watched.url + "/", concurrency=4) as load:
        load.wait_requests(30)
        watched.set_greeting("Saved and live")
        wait_for(lambda: reloads(watched)["ok"] == 1, timeout=60, message="a reload")
        load.wait_requests(30)
        outcome = load.stop()
    assert outcome.failures == 0, outcome.summary()
    with Load(watched.url + "/", concurrency=4) as after:
        after.wait_requests(40)
        fresh = after.stop()
    assert set(fresh.bodies) == {b"Saved and live\n"}


def test_burst_of_writes_makes_exactly_one_reload(watched: StackDir) -> None:
    source = watched.app.read_text()
    for i in range(50):
        watched.app.write_text(source.replace("Hello from fnud", f"Hello {i}"))
    state = wait_for(lambda: settled(watched), timeout=60, message="reloads to settle")
    assert state["reloads"] == {"ok": 1, "refused": 0, "failed": 0, "rolled_back": 0}  # type: ignore[index]


def test_broken_save_is_refused_then_fixed_save_goes_live(watched: StackDir) -> None:
    good = watched.app.read_text()
    watched.app.write_text(good + "\ndef broken(:\n")
    wait_for(lambda: reloads(watched)["refused"] == 1, timeout=60, message="refusal")
    last = watched.status()["last_reload"]
    assert "SyntaxError" in last["message"] and f"{watched.app}:" in last["message"]  # type: ignore[index]
    with Load(watched.url + "/", concurrency=2) as load:
        load.wait_requests(20)
        outcome = load.stop()
    assert outcome.failures == 0 and set(outcome.bodies) == {b"Hello from fnud\n"}
    watched.app.write_text(good.replace("Hello from fnud", "Fixed"))
    wait_for(lambda: reloads(watched)["ok"] == 1, timeout=60, message="good reload")
    with Load(watched.url + "/", concurrency=2) as load:
        load.wait_requests(20)
        outcome = load.stop()
    assert set(outcome.bodies) == {b"Fixed\n"}


def test_editor_temp_files_and_pycache_do_not_reload(watched: StackDir) -> None:
    app_dir = watched.app.parent
    for name in (".app.py.swp", "app.py~", "4913", ".#app.py"):
        (app_dir / name).write_text("x")
    (app_dir / "__pycache__").mkdir(exist_ok=True)
    (app_dir / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"x")
    (app_dir / "notes.txt").write_text("not code")
    # a real change afterwards: if the junk had counted, it would be in this reload's
    # reason or would have made a reload of its own
    watched.set_greeting("Only this")
    state = wait_for(
        lambda: (lambda s: s if s and s["reloads"]["ok"] else None)(settled(watched)),
        timeout=60, message="the reload",
    )
    assert state["reloads"] == {"ok": 1, "refused": 0, "failed": 0, "rolled_back": 0}  # type: ignore[index]
    assert state["last_reload"]["reason"] == f"changed: {watched.app}"  # type: ignore[index]


def test_changes_during_a_reload_make_exactly_one_follow_up(watched: StackDir) -> None:
    watched.set_greeting("First")
    wait_for(lambda: watched.status()["reloading"], timeout=30, interval=0.01,
             message="the first reload to begin")
    for i in range(10):
        watched.set_greeting(f"During {i}")

    def two_reloads() -> dict[str, Any] | None:
        state = settled(watched)
        done = state and state["reloads"]["ok"] + state["reloads"]["refused"]  # type: ignore[index]
        return state if done and done >= 2 else None

    state = wait_for(two_reloads, timeout=90, message="the follow-up reload")
    # The first reload's preflight may read app.py between a truncate and its write (these
    # saves are not atomic): then that one is refused, and the follow-up serves the last.
    reloads = state["reloads"]  # type: ignore[index]
    assert reloads["ok"] + reloads["refused"] == 2, reloads  # not one per save
    assert (reloads["failed"], reloads["rolled_back"]) == (0, 0), reloads
    assert state["last_reload"]["result"] == "ok", state["last_reload"]  # type: ignore[index]
    with Load(watched.url + "/", concurrency=2) as load:
        load.wait_requests(20)
        outcome = load.stop()
    assert set(outcome.bodies) == {b"During 9\n"}


# -- editors' ways of saving: each is one reload, never a refused one --------------------


def _fsynced(path: Path, text: str, mode: str = "w") -> None:
    with open(path, mode) as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def truncate_then_write(app: Path, text: str) -> None:
    """Most editors: open with O_TRUNC (an empty, valid module for a moment), write, sync."""
    with open(app, "w") as handle:
        handle.flush()
        os.fsync(handle.fileno())
        for piece in (text[: len(text) // 2], text[len(text) // 2:]):
            handle.write(piece)
            handle.flush()
            os.fsync(handle.fileno())


def rename_over(app: Path, text: str) -> None:
    """Atomic savers (JetBrains "safe write", Emacs, many tools): a temp file renamed over."""
    tmp = app.with_name(app.name + ".tmp")
    _fsynced(tmp, text)
    os.replace(tmp, app)


def vim_backup(app: Path, text: str) -> None:
    """vim's default on Linux: probe file 4913, the original moved to a backup, a new
    file written, the backup deleted."""
    probe = app.with_name("4913")
    probe.write_text("")
    probe.unlink()
    backup = app.with_name(app.name + "~")
    os.replace(app, backup)
    _fsynced(app, text)
    backup.unlink()


def several_files(app: Path, text: str) -> None:
    """One save touching several files: a helper module and a template, then the app."""
    _fsynced(app.with_name("helpers.py"), "GREETING_SUFFIX = ''\n")
    (app.parent / "templates").mkdir(exist_ok=True)
    _fsynced(app.parent / "templates" / "index.html", "<p>{{ greeting }}</p>\n")
    _fsynced(app, text)


@pytest.mark.parametrize("save", [truncate_then_write, rename_over, vim_backup, several_files])
def test_each_way_of_saving_makes_one_reload_never_a_refused_one(
    watched: StackDir, save: Callable[[Path, str], None]
) -> None:
    """With the default debounce: what an editor writes in one save is one reload."""
    source = watched.app.read_text()
    save(watched.app, source.replace("Hello from fnud", "Saved once"))
    state = wait_for(
        lambda: (lambda s: s if s and sum(s["reloads"].values()) else None)(settled(watched)),
        timeout=60, message="the reload",
    )
    assert state["reloads"] == {"ok": 1, "refused": 0, "failed": 0, "rolled_back": 0}  # type: ignore[index]
    with Load(watched.url + "/", concurrency=2) as load:
        load.wait_requests(10)
        outcome = load.stop()
    assert set(outcome.bodies) == {b"Saved once\n"}
