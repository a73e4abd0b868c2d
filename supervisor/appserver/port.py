"""The one port between fnud and an app server: what the stack, the reload, the status
and the health probe may ask of one generation of it (AppDriver), and what is known of
the server before any generation runs (AppServer).

uWSGI (``supervisor.uwsgi``) and gunicorn (``supervisor.gunicorn``) implement it; only
the composition root (stack/plan.py) chooses one, and nothing else names the server it
drives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from supervisor.appserver.workers import Stats
from supervisor.common.progress import Emit
from supervisor.process.program import Driver
from supervisor.runtime.paths import Paths
from supervisor.runtime.release import Release


class AppServerError(Exception):
    """The app server did not do what was asked (one line, for the user)."""


class WorkersUnknown(AppServerError):
    """The app server cannot tell about its workers now (starting, stopping, gone)."""


class CannotPause(AppServerError):
    """This generation cannot stop taking requests and stay warm (its workers would
    stall what they took): it is stopped instead, and a rollback starts it cold."""


class AppServer(Protocol):
    """The app server as fnud knows it without a generation: the names of its program
    and files, and how a master a dead daemon left running is recognised and stopped."""

    name: str  # its program's name: state.json's key, its log file, `fnud logs NAME`
    display: str  # as users know it ("uWSGI", "gunicorn")
    orphan_signal: int  # to workers whose master is dead: finish what you have, then exit
    stray_signal: int  # to a master a dead daemon left not serving (paused, retiring): stop now

    def mark(self, paths: Paths) -> str:
        """What the command line of every generation's master contains."""
        ...

    def stop_survivor(self, paths: Paths, generation: int, pid: int) -> None:
        """Ask master ``pid`` of ``generation``, left by a dead daemon, to stop
        gracefully (returns at once; the caller waits and kills)."""
        ...


class AppDriver(Driver, Protocol):
    """One generation of the app server: its own master on the held sockets."""

    number: int  # the generation; a restarted daemon finds its files by it
    display: str  # the server's name as users know it ("uWSGI")

    @property
    def release(self) -> str:
        """The app directory this generation loads (resolved; '' before it started)."""
        ...

    def pinned(self) -> Release | None:
        """What this generation loads, pinned at its first start: what a rollback goes
        back to and what a restarted daemon adopts (None when not pinned)."""
        ...

    def discard(self) -> None:
        """It is gone for good (stopped, never to run again): remove the files it ran
        by (its rendered config, fifo, sockets), so reloads leave no trail."""
        ...

    def bind(self) -> None:
        """Hold the listening sockets its next spawn inherits (binding those not held
        yet; raises OSError naming the config line)."""
        ...

    @property
    def paused(self) -> bool:
        """Paused (by :meth:`pause`), as far as fnud knows."""
        ...

    async def workers(self) -> Stats:
        """Its workers now (raises :class:`WorkersUnknown`)."""
        ...

    def observe(self, line: str) -> None:
        """Take in one line of the log it shares with other generations."""
        ...

    async def pause(self, pid: int) -> None:
        """Stop taking requests, keep the app loaded (a warm rollback target); a
        request already taken is answered. Raises :class:`CannotPause`."""
        ...

    async def resume(self, pid: int) -> None:
        """Take requests again after :meth:`pause`."""
        ...

    def answer(self, line: str) -> tuple[int, int] | None:
        """(worker pid, HTTP status) when ``line`` of its log records an answer."""
        ...

    async def reload_in_place(
        self, pid: int, alive: Callable[[], str], emit: Emit, timeout: float, changed: bool
    ) -> tuple[int, str]:
        """Replace the workers of the running master (no new generation): (workers
        replaced, how). ``alive()`` says why the master is gone ('' while it runs);
        ``changed``: its config file changed since it started. Raises AppServerError."""
        ...
