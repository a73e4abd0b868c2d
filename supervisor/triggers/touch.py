"""uWSGI's touch-chain-reload / touch-reload, honoured through fnud's gate.

fnud takes these options away from uWSGI (see uwsgi.render_ini) and watches the files
itself (inotify on their directories; a poll like uWSGI's only without inotify); a
touch becomes a gated reload request instead of an unchecked reload.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from supervisor.common import inotify

#: a touch (mtime: IN_ATTRIB), a write, or a file created or moved into place
_EVENTS = (inotify.IN_ATTRIB | inotify.IN_MODIFY | inotify.IN_CREATE | inotify.IN_MOVED_TO
           | inotify.IN_ONLYDIR)

Stamp = tuple[int, int] | None


def stamp(path: Path) -> Stamp:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_ino)


class TouchWatcher:
    def __init__(
        self, files: Sequence[Path], on_touch: Callable[[Path], None], interval: float = 0.25
    ) -> None:
        self.files = list(files)
        self.on_touch = on_touch
        self.interval = interval
        self.stamps = {path: stamp(path) for path in self.files}

    def poll(self) -> list[Path]:
        """Files touched since the last poll (each reported once per change)."""
        touched = []
        for path in self.files:
            now = stamp(path)
            if now is not None and now != self.stamps[path]:
                touched.append(path)
            self.stamps[path] = now
        return touched

    async def run(self) -> None:
        """Report touches as they happen: inotify on the files' directories (an idle
        daemon sleeps), else a poll every ``interval`` seconds."""
        try:
            fd = self._watch()
        except OSError:
            fd = -1
        if fd < 0:
            while True:
                await asyncio.sleep(self.interval)
                self._report()
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        loop.add_reader(fd, wake.set)
        try:
            while True:
                await wake.wait()
                wake.clear()
                names = {name for _wd, _mask, name in inotify.read_events(fd)}
                if names & {path.name for path in self.files}:
                    self._report()
        finally:
            loop.remove_reader(fd)
            os.close(fd)

    def _report(self) -> None:
        for path in self.poll():
            self.on_touch(path)

    def _watch(self) -> int:
        """One inotify fd watching every touch file's directory for that file's changes."""
        fd = inotify.init()
        try:
            for directory in {path.parent for path in self.files}:
                inotify.add_watch(fd, str(directory), _EVENTS)
        except OSError:
            os.close(fd)
            raise
        return fd
