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

    @property
    def uwsgi_dir(self) -> Path:
        """uWSGI's own corner: its master recreates the fifo and serves the stats socket
        after dropping privileges, so with [fnud] user it belongs to that user."""
        return self.root / "uwsgi"

    def uwsgi_fifo(self, generation: int) -> Path:
        return self.uwsgi_dir / f"uwsgi-{generation}.fifo"

    def uwsgi_stats(self, generation: int) -> Path:
        return self.uwsgi_dir / f"uwsgi-stats-{generation}.sock"

    def rendered_ini(self, generation: int) -> Path:
        """The rendered ini: in the root-owned runtime dir, not in uWSGI's own corner (a
        file there could be a link planted by the app's user)."""
        return self.root / f"uwsgi-{generation}.ini"

    @property
    def rendered_ini_prefix(self) -> str:
        """What every generation's uWSGI command line names (survivors are recognised by it)."""
        return str(self.root / "uwsgi-")

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
