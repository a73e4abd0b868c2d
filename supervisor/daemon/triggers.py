"""The file triggers wired to the stack: the ini's touch-reload files and `[watch]` saves.

Their callbacks run outside the loop's handlers and only enqueue an ``Invoke`` of the
reload command (the loop dispatches it like any other door).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supervisor.daemon.events import Enqueue, Invoke
from supervisor.logs import logsetup
from supervisor.stack.plan import StackError
from supervisor.stack.stack import Stack
from supervisor.triggers.touch import TouchWatcher

if TYPE_CHECKING:  # watchdog and its threads only when [watch] is on (an idle daemon's RSS)
    from supervisor.triggers.watch import Change
    from supervisor.triggers.watch import Watcher as Watcher  # re-exported for the daemon's type


def file_watcher(stack: Stack, enqueue: Enqueue) -> Watcher | None:
    """Start the `[watch]` observer when enabled; None when off or not watchable."""
    config = stack.config
    watch = config.watch
    if not watch.enabled:
        return None
    from supervisor.triggers.watch import Rules, Watcher, resolve_all

    try:
        dirs = code_dirs(stack)
        nginx_files = [Path(f) for f in stack.plan.nginx_conf.files]
    except StackError as exc:
        logsetup.get("daemon").error("cannot watch files", reason=str(exc))
        return None
    rules = Rules(
        code_dirs=dirs,
        include=watch.include,
        exclude=watch.exclude,
        nginx_files=resolve_all(nginx_files),
        ini_files=resolve_all(list(config.app_config_files)),
        config_files=resolve_all([config.path]),
    )

    def changed(change: Change) -> None:
        enqueue(Invoke("reload", {
            "reason": change.describe(), "nginx": change.nginx, "app": change.app,
            "trigger": "save",
        }))

    watcher = Watcher(rules, watch.debounce_ms / 1000, changed)
    watcher.start(asyncio.get_running_loop())
    return watcher


def code_dirs(stack: Stack) -> tuple[Path, ...]:
    """The app's directories as they resolve now (a release symlink followed)."""
    paths = stack.config.watch.paths or (Path(stack.plan.app().chdir),)
    return tuple(p.resolve() for p in paths)


def touch_watcher(stack: Stack, enqueue: Enqueue) -> Any | None:
    """The coroutine following the ini's touch-reload files; None when there are none."""
    try:
        files = stack.plan.touch_files()
    except StackError:
        return None
    if not files:
        return None
    logsetup.get("daemon").info(
        "watching touch files (gated reload)", files=[str(f) for f in files]
    )

    def touched(path: Path) -> None:
        enqueue(Invoke("reload", {"reason": f"touched {path}", "trigger": "touch"}))

    return TouchWatcher(files, touched).run()
