"""What every `fnud` command shares: one-line errors, the config (thin or full), and one
call to the daemon."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

import click

from supervisor.cli.basics import EXIT_NOT_RUNNING, client_config, fail, full_config
from supervisor.common.text import for_terminal
from supervisor.config.client import ClientConfig
from supervisor.control import wire
from supervisor.runtime.lock import lock_holder

if TYPE_CHECKING:
    from supervisor.config.schema import Config

__all__ = ["call_daemon", "fail", "get_client", "get_config", "not_running"]


def get_config(ctx: click.Context) -> Config:
    """The full config (start, check, systemd-unit, and thin commands finding no daemon)."""
    return full_config(ctx.obj.get("config"))


def get_client(ctx: click.Context) -> ClientConfig:
    """What a thin command needs; a file the thin reader cannot read gets the parser's
    error."""
    return client_config(ctx.obj.get("config"))



def not_running(ctx: click.Context) -> NoReturn:
    """No daemon: a broken fnud.toml is what to say first (exit 2), as before the thin
    client; else "not running" (exit 3)."""
    get_config(ctx)
    fail("fnud is not running", EXIT_NOT_RUNNING)


def call_daemon(
    ctx: click.Context, client: ClientConfig, cmd: str, args: dict[str, Any] | None = None,
    timeout: float = 30.0, progress: bool = False, failure: str = "",
) -> Any:
    """One command to the daemon; exits with a one-line error (``failure`` + the daemon's
    reason) if it is not running, unreachable or says no."""
    paths = client.paths
    if lock_holder(paths.lock) is None:
        not_running(ctx)
    try:
        return wire.call(
            paths.socket, cmd, args, timeout=timeout,
            on_progress=(lambda text: click.echo(f"  {for_terminal(text)}")) if progress else None,
        )
    except wire.ClientError as exc:
        fail(f"{failure}{exc}")
    except OSError as exc:
        fail(f"cannot reach the daemon at {paths.socket}: {exc}")


