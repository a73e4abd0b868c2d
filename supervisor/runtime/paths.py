"""Where fnud keeps what it runs by: every path below the runtime and log directories.

Path arithmetic only (the thin CLI imports this): the directories themselves are made
and checked by dirs.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple


class Paths(NamedTuple):
    """(A NamedTuple, not a dataclass: `fnud status` imports this, and dataclasses'
    import costs it several milliseconds.)"""

    root: Path
    nginx_prefix: Path
    log_dir: Path

    @property
    def socket(self) -> Path:
        return self.root / "fnud.sock"

    @property
    def lock(self) -> Path:
        return self.root / "fnud.lock"

    def corner(self, server: str) -> Path:
        """The app server's own corner (``run/uwsgi``, ``run/gunicorn``): its processes
        write there after dropping privileges, so with [fnud] user it belongs to that
        user."""
        return self.root / server

    def rendered(self, server: str, generation: int, suffix: str) -> Path:
        """A generation's rendered config: in the root-owned runtime dir, not in the
        server's own corner (a file there could be a link planted by the app's user)."""
        return self.root / f"{server}-{generation}{suffix}"

    def rendered_prefix(self, server: str) -> str:
        """What every generation's command line names (survivors are recognised by it)."""
        return str(self.root / f"{server}-")

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def previous_release(self) -> Path:
        """What `fnud rollback` goes back to; kept across daemon restarts and stops."""
        return self.root / "previous-release.json"

    @property
    def daemon_log(self) -> Path:
        return self.log_dir / "fnud.log"
