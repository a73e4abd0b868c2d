"""The one port between fnud and an app server: what the stack, the reload, the status
and the health probe may ask of one generation of it.

uWSGI implements it (``supervisor.uwsgi.driver``); nothing outside an adapter names the
server it drives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from supervisor.appserver.workers import Stats
from supervisor.common.progress import Emit
from supervisor.process.program import Driver
from supervisor.runtime.release import Release


class AppServerError(Exception):
    """The app server did not do what was asked (one line, for the user)."""


class WorkersUnknown(AppServerError):
    """The app server cannot tell about its workers now (starting, stopping, gone)."""


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

    @property
    def paused(self) -> bool:
        """Paused (by :meth:`pause`), as far as fnud knows."""
        ...

    async def workers(self) -> Stats:
        """Its workers now (raises :class:`WorkersUnknown`)."""
        ...

    async def pause(self, pid: int) -> None:
        """Stop taking requests, keep the app loaded (a warm rollback target)."""
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
