"""``fnud logs``: a program's log file, its last lines and (``-f``) what follows.

A thin command (tests/test_footprint.py): click and supervisor.tail only. Registered on
the ``fnud`` group by supervisor.cli; it takes cli's helpers inside the command, so this
module imports nothing of cli's at import time.
"""

from __future__ import annotations

import os
from pathlib import Path

import click


@click.command()
@click.argument("program", required=False, type=click.Choice(["fnud", "uwsgi", "nginx"]))
@click.option("-n", "lines", type=int, default=50, show_default=True, help="Lines to show.")
@click.option("-f", "follow", is_flag=True, help="Keep printing new lines (Ctrl-C stops).")
@click.pass_context
def logs(ctx: click.Context, program: str | None, lines: int, follow: bool) -> None:
    """Show a program's log (default: fnud's own, which includes both programs)."""
    from supervisor.cli import fail, get_client
    from supervisor.tail import Tail, end_of

    path = get_client(ctx).log_dir / f"{program or 'fnud'}.log"
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
