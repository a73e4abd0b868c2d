"""`fnud logs` and `fnud reopen-logs`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    pass

from supervisor.cli.support import call_daemon, fail, get_client
from supervisor.config.servers import APP_SERVERS


@click.command("reopen-logs")
@click.pass_context
def reopen_logs(ctx: click.Context) -> None:
    """Reopen every log file (after logrotate moved them); nothing restarts."""
    client = get_client(ctx)
    result = call_daemon(ctx, client, "reopen-logs")
    for line in result["reopened"]:
        click.echo(f"reopened {line}")
    for line in result.get("not_reopened", []):
        click.echo(f"not reopened: {line}")


@click.command()
@click.argument(
    "program", required=False, type=click.Choice(["fnud", "app", *APP_SERVERS, "nginx"])
)
@click.option("-n", "lines", type=int, default=50, show_default=True, help="Lines to show.")
@click.option("-f", "follow", is_flag=True, help="Keep printing new lines (Ctrl-C stops).")
@click.pass_context
def logs(ctx: click.Context, program: str | None, lines: int, follow: bool) -> None:
    """Show a program's log (default: fnud's own, which includes both programs; app: the
    app server's)."""
    from supervisor.logs.tail import Tail, end_of

    client = get_client(ctx)
    name = client.app_program if program == "app" else program or "fnud"
    path = client.log_dir / f"{name}.log"
    if not path.exists():
        fail(f"{path}: no such log yet", 1)
    for line in last_lines(path, lines):
        click.echo(line)
    if not follow:
        return
    follower = Tail(path, end_of(path))
    try:
        while True:
            for line in follower.read_lines():
                click.echo(line)
            if follower.rotated():
                for line in follower.read_lines():
                    click.echo(line)
                follower.close()
                follower = Tail(path, 0)
                continue
            follower.wait(5.0)  # inotify: returns as soon as the file changes
    except KeyboardInterrupt:
        pass


def last_lines(path: Path, count: int, block: int = 65536) -> list[str]:
    """The last ``count`` lines of a file without reading all of it."""
    if count <= 0:
        return []
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        end = handle.tell()
        data = b""
        while end > 0 and data.count(b"\n") <= count:
            start = max(0, end - block)
            handle.seek(start)
            data = handle.read(end - start) + data
            end = start
    text = data.decode(errors="replace").splitlines()
    return text[-count:]

