"""[watch]: path rules, the debouncer, config changes, and the polling fallback without inotify."""

from __future__ import annotations

import asyncio
from pathlib import Path

from supervisor.triggers.watch import Change, Debouncer, Rules, Watcher


def make_rules(tmp_path: Path) -> Rules:
    return Rules(
        code_dirs=(tmp_path / "app",),
        include=("*.py", "*.html"),
        exclude=("__pycache__", "*.swp", "*~", "4913", ".#*"),
        nginx_files=frozenset({tmp_path / "nginx.conf"}),
        ini_files=frozenset({tmp_path / "uwsgi.ini"}),
        config_files=frozenset({tmp_path / "fnud.toml"}),
    )


class _NoInotify:
    """An observer whose start fails like inotify at its watch limit."""

    def schedule(self, *args: object, **kwargs: object) -> None:
        pass

    def start(self) -> None:
        raise OSError(28, "inotify watch limit reached")


def test_rules_classify(tmp_path: Path) -> None:
    rules = make_rules(tmp_path)
    app = tmp_path / "app"
    assert rules.classify(app / "views.py") == "app"
    assert rules.classify(app / "templates" / "a.html") == "app"
    assert rules.classify(app / "__pycache__" / "views.cpython-311.pyc") is None
    assert rules.classify(app / ".views.py.swp") is None
    assert rules.classify(app / "views.py~") is None
    assert rules.classify(app / "notes.txt") is None
    assert rules.classify(tmp_path / "other.py") is None  # outside the code dirs
    assert rules.classify(tmp_path / "nginx.conf") == "nginx"
    assert rules.classify(tmp_path / "uwsgi.ini") == "ini"
    assert rules.classify(tmp_path / "fnud.toml") == "config"


def test_debouncer_merges_a_burst_into_one_change() -> None:
    changes: list[Change] = []

    async def scenario() -> None:
        debouncer = Debouncer(0.05, changes.append)
        for i in range(20):
            debouncer.add("app", f"/x/{i % 3}.py")
        debouncer.add("nginx", "/x/nginx.conf")
        assert debouncer.pending and not changes
        while debouncer.pending:
            await asyncio.sleep(0.01)

    asyncio.run(scenario())
    assert len(changes) == 1
    change = changes[0]
    assert change.app and change.nginx
    assert change.paths == ("/x/0.py", "/x/1.py", "/x/2.py", "/x/nginx.conf")


def test_config_change_rereads_without_touching_the_app() -> None:
    changes: list[Change] = []
    debouncer = Debouncer(1.0, changes.append)
    debouncer.kinds, debouncer.paths = {"config"}, ["/x/fnud.toml"]
    debouncer.flush()
    assert changes == [Change(app=False, nginx=True, paths=("/x/fnud.toml",))]


def test_falls_back_to_polling_when_inotify_fails(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    changes: list[Change] = []

    async def scenario() -> None:
        watcher = Watcher(make_rules(tmp_path), 0.05, changes.append, observer_factory=_NoInotify)
        watcher.start(asyncio.get_running_loop())
        try:
            assert watcher.polling
            (tmp_path / "app" / "new.py").write_text("x = 1\n")
            deadline = asyncio.get_running_loop().time() + 15
            while not changes and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
        finally:
            watcher.stop()

    asyncio.run(scenario())
    assert changes and changes[0].app
