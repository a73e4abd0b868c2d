"""Save the code, the site picks it up: file changes become debounced, gated reloads.

The watchdog observer runs in its own thread; its callback only hands the path to the
daemon's loop (``call_soon_threadsafe``). In the loop, changes are classified (app code,
nginx config, uWSGI ini, fnud.toml) and collected until ``debounce_ms`` pass without a
new one; then a single reload request is emitted for the whole burst.
"""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from watchdog.events import (
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from supervisor.logs import logsetup


@dataclass(frozen=True)
class Change:
    """What one debounced burst of file events asks for."""

    app: bool = False
    nginx: bool = False
    paths: tuple[str, ...] = ()

    def describe(self) -> str:
        shown = ", ".join(self.paths[:3])
        more = f" and {len(self.paths) - 3} more" if len(self.paths) > 3 else ""
        return f"changed: {shown}{more}"


@dataclass(frozen=True)
class Rules:
    """Which paths matter, and for what."""

    code_dirs: tuple[Path, ...]
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    nginx_files: frozenset[Path] = frozenset()
    ini_files: frozenset[Path] = frozenset()
    config_files: frozenset[Path] = frozenset()

    def excluded(self, path: PurePath) -> bool:
        return any(
            fnmatch.fnmatch(part, pattern) for part in path.parts for pattern in self.exclude
        )

    def classify(self, path: Path) -> str | None:
        """'nginx', 'ini', 'config', 'app' or None (ignored)."""
        if path in self.nginx_files:
            return "nginx"
        if path in self.ini_files:
            return "ini"
        if path in self.config_files:
            return "config"
        if self.excluded(path):
            return None
        if not any(path.is_relative_to(d) for d in self.code_dirs):
            return None
        if any(fnmatch.fnmatch(path.name, pattern) for pattern in self.include):
            return "app"
        return None

    def directories(self) -> list[tuple[Path, bool]]:
        """(directory, recursive) pairs to watch."""
        dirs: dict[Path, bool] = {d: True for d in self.code_dirs}
        for path in self.nginx_files | self.ini_files | self.config_files:
            dirs.setdefault(path.parent, False)
        return sorted(dirs.items())


@dataclass
class Debouncer:
    """Collects classified paths; calls ``emit`` once per quiet period."""

    delay: float
    emit: Callable[[Change], None]
    kinds: set[str] = field(default_factory=set)
    paths: list[str] = field(default_factory=list)
    _timer: asyncio.TimerHandle | None = None

    def add(self, kind: str, path: str) -> None:
        self.kinds.add(kind)
        if path not in self.paths:
            self.paths.append(path)
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(self.delay, self.flush)

    @property
    def pending(self) -> bool:
        return self._timer is not None

    def flush(self) -> None:
        self._timer = None
        if not self.kinds:
            return
        kinds = self.kinds
        change = Change(
            app="app" in kinds or "ini" in kinds,
            nginx="nginx" in kinds or "config" in kinds,
            paths=tuple(self.paths),
        )
        self.kinds, self.paths = set(), []
        self.emit(change)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


#: what _Handler acts on; also the inotify mask: without it every open and read-only
#: close in a watched dir (nginx opening /etc/nginx/mime.types) woke the observer (measured
#: 10-20 wakeups/s on a busy machine)
WRITES = [FileCreatedEvent, FileModifiedEvent, FileMovedEvent, FileDeletedEvent, FileClosedEvent]


class _Handler(FileSystemEventHandler):
    def __init__(self, deliver: Callable[[str], None]) -> None:
        self.deliver = deliver

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type in ("opened", "closed_no_write"):
            return
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            if raw:
                self.deliver(raw if isinstance(raw, str) else raw.decode(errors="replace"))


class Watcher:
    """Owns the observer thread; everything else happens in the loop."""

    def __init__(
        self, rules: Rules, debounce: float, emit: Callable[[Change], None],
        observer_factory: Callable[[], Any] = Observer,
    ) -> None:
        self.rules = rules
        self.debouncer = Debouncer(debounce, emit)
        self.observer_factory = observer_factory
        self.observer: Any = None
        self.polling = False
        self.log = logsetup.get("watch")

    def _on_path(self, raw: str) -> None:  # in the loop
        path = Path(raw)
        kind = self.rules.classify(path)
        if kind is not None:
            self.debouncer.add(kind, str(path))

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        def deliver(raw: str) -> None:  # in the observer thread: hand over, nothing else
            loop.call_soon_threadsafe(self._on_path, raw)

        handler = _Handler(deliver)
        try:
            self.observer = self._schedule(self.observer_factory(), handler)
            self.observer.start()
        except OSError as exc:  # inotify watch/instance limit reached
            self.log.warning("inotify unavailable, falling back to polling", error=str(exc))
            self.polling = True
            self.observer = self._schedule(PollingObserver(timeout=1.0), handler)
            self.observer.start()
        self.log.info(
            "watching for changes",
            dirs=[str(d) for d, _ in self.rules.directories()],
            mode="polling" if self.polling else "inotify",
        )

    def _schedule(self, observer: Any, handler: _Handler) -> Any:
        for directory, recursive in self.rules.directories():
            if directory.is_dir():
                observer.schedule(handler, str(directory), recursive=recursive,
                                  event_filter=WRITES)
        return observer

    def stop(self) -> None:
        self.debouncer.cancel()
        if self.observer is not None:
            self.observer.stop()
            self.observer.join(timeout=5)
            self.observer = None


def resolve_all(paths: Iterable[Path]) -> frozenset[Path]:
    return frozenset(p.resolve() for p in paths)
