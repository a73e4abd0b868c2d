"""uWSGI's touch-chain-reload / touch-reload, honoured through fnud's gate.

fnud takes these options away from uWSGI (see uwsgi.render_ini) and polls the files
itself, like uWSGI does; a touch becomes a gated reload request instead of an
unchecked reload.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from pathlib import Path

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
        while True:
            await asyncio.sleep(self.interval)
            for path in self.poll():
                self.on_touch(path)
