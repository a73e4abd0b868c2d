"""The ``fnud`` command: a thin client of the daemon's control socket.

The commands that only talk to the daemon or read its files (status, reload, stop,
reopen-logs, logs) import click, the protocol's client (wire.py) and the few settings
they need (clientconf.py): nothing of the daemon's (asyncio, structlog, psutil, the
config parser). start, check and systemd-unit import what they need when they run.
tests/test_footprint.py holds this to account.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING

import click

from supervisor.cli.statusview import render_status
from supervisor.common.text import for_terminal
from supervisor.control import wire
from supervisor.runtime.lock import lock_holder

if TYPE_CHECKING:
    pass

from supervisor.cli import admin, logs
from supervisor.cli import start as start_command
from supervisor.cli.status import once as status_once
from supervisor.cli.support import call_daemon, fail, get_client, get_config


def _version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """click.version_option's output, without its import-time gettext look-ups (each a
    search of the locale dirs: measured as a good part of this module's import)."""
    if not value or ctx.resilient_parsing:
        return
    from importlib.metadata import version

    click.echo(f"{ctx.find_root().info_name}, version {version('fnud')}")
    ctx.exit()


@click.group()
@click.option(
    "-c", "--config", "config", metavar="FILE",
    help="fnud.toml (default: $FNUD_CONFIG, else ./config/fnud.toml)",
)
@click.option(
    "--version", is_flag=True, is_eager=True, expose_value=False, callback=_version,
    help="Show the version and exit.",
)
@click.pass_context
def main(ctx: click.Context, config: str | None) -> None:
    """fnud: run nginx and uWSGI as one stack; reload without dropping a request."""
    ctx.ensure_object(dict)
    ctx.obj["config"] = config


# -- stop ----------------------------------------------------------------------------


@main.command()
@click.pass_context
def stop(ctx: click.Context) -> None:
    """Stop nginx then uWSGI gracefully (SIGKILL after [fnud] stop_timeout)."""
    client = get_client(ctx)
    paths = client.paths
    holder = lock_holder(paths.lock)
    if holder is None:
        from supervisor.stack import survivors

        config = get_config(ctx)
        found = survivors.stop(config, config.fnud.stop_timeout)
        if found:  # a killed daemon left them: stop them all the same
            listed = ", ".join(f"{name} (pid {pid})" for name, pid in sorted(found.items()))
            click.echo(f"fnud was not running; stopped what it had left running: {listed}")
        else:
            click.echo("fnud is not running")
        sys.exit(0)
    try:
        wire.call(
            paths.socket, "stop", timeout=client.stop_timeout + 30,
            on_progress=lambda text: click.echo(for_terminal(text)),
        )
    except (OSError, wire.ClientError) as exc:
        if lock_holder(paths.lock) is not None:
            fail(f"cannot stop the daemon (pid {holder}): {exc}")
    deadline = time.monotonic() + 15
    while process_alive(holder) and time.monotonic() < deadline:
        time.sleep(0.05)
    if process_alive(holder):
        fail(f"the daemon (pid {holder}) did not exit")
    click.echo("fnud stopped")


def process_alive(pid: int) -> bool:
    """Alive and not a zombie, from /proc (no psutil: this is the thin client)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            state = handle.read().rpartition(b")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in (b"Z", b"X")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@click.option("--watch", "watch", is_flag=True, help="Refresh every 2 s like top (Ctrl-C).")
@click.pass_context
def status(ctx: click.Context, as_json: bool, watch: bool) -> None:
    """Show programs, workers and the last reload. Exit 0 if all RUNNING, 3 if no daemon."""
    client = get_client(ctx)
    lock = client.paths.lock
    if watch and not as_json:
        try:
            while True:
                text = (
                    render_status(call_daemon(ctx, client, "status"))
                    if lock_holder(lock) is not None else "fnud is not running"
                )
                click.clear()
                click.echo(f"{time.strftime('%H:%M:%S')}  fnud status --watch (Ctrl-C quits)\n")
                click.echo(text)
                time.sleep(2)
        except KeyboardInterrupt:
            return
    sys.exit(status_once(ctx.obj.get("config"), as_json))


# -- reload --------------------------------------------------------------------------


@main.command()
@click.option("--nginx", "only_nginx", is_flag=True, help="Only nginx (reloads even if unchanged).")
@click.option("--app", "only_app", is_flag=True, help="Only the app server.")
@click.option("--no-wait", is_flag=True, help="Return at the switch, not after the settle.")
@click.pass_context
def reload(ctx: click.Context, only_nginx: bool, only_app: bool, no_wait: bool) -> None:
    """Check everything, then reload with zero downtime; refuse a broken deploy.

    Exit 0 when the new code serves (and settled), 1 when refused, failed or rolled back."""
    client = get_client(ctx)
    args = {
        "nginx": only_nginx or not only_app,
        "app": only_app or not only_nginx,
        "force_nginx": only_nginx,
        "no_wait": no_wait,
        "trigger": _trigger(),
    }
    result = call_daemon(
        ctx, client, "reload", args, timeout=client.reload_budget, progress=True,
        failure="reload ",
    )
    if "duration" not in result:
        click.echo(f"reload: {for_terminal(result['message'])}")
        return
    click.echo(f"reloaded in {result['duration']:.1f}s: {for_terminal(result['message'])}")


def _trigger() -> str:
    """systemd sets $MAINPID for ExecReload= (`systemctl reload`): the history says so."""
    return "systemd" if os.environ.get("MAINPID") else "cli"


@main.command()
@click.pass_context
def rollback(ctx: click.Context) -> None:
    """Back to the previous release (generation mode); its symlink too."""
    client = get_client(ctx)
    result = call_daemon(
        ctx, client, "rollback", {"trigger": _trigger()}, timeout=client.reload_budget,
        progress=True,
        failure="rollback ",
    )
    click.echo(f"rolled back in {result['duration']:.1f}s: {for_terminal(result['message'])}")



main.add_command(start_command.start)
main.add_command(admin.check)
main.add_command(admin.systemd_unit)
main.add_command(admin.init)
main.add_command(logs.reopen_logs)
main.add_command(logs.logs)
