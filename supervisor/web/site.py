"""The status page as the daemon runs it: the reload history always (a page turned on
later shows it), the server and the request rate only with ``[web] listen``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from supervisor.common.ports import is_loopback
from supervisor.web.history import History, RequestRates
from supervisor.web.page import Hooks, WebApp, WebServer


class Site:
    def __init__(self, runtime_dir: Path) -> None:
        self.history = History.in_dir(runtime_dir)
        self.server: WebServer | None = None

    async def start(
        self, listen: str, hooks: Hooks, answers: list[Callable[[int, int], None]]
    ) -> None:
        """Serve the page on ``listen`` (HOST:PORT; '' = off); count the answers that
        reach ``answers``."""
        if not listen:
            return
        host, _, port = listen.rpartition(":")
        rates = RequestRates()
        server = WebServer(WebApp(hooks, self.history, rates, loopback_only=is_loopback(host)))
        try:
            await server.start(host.strip("[]"), int(port))
        except OSError as exc:
            server.log.error("cannot serve the status page", listen=listen, error=exc.strerror)
            return
        answers.append(lambda _pid, status: rates.add(status))
        self.server = server

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()
