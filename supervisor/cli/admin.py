"""Commands that read the config themselves: `fnud check` and `fnud systemd-unit`."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from supervisor.config import client as clientconf

if TYPE_CHECKING:
    pass

from supervisor.cli.support import get_config


@click.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Lint fnud.toml, the uWSGI ini and nginx.conf; exit 1 on any error."""
    from supervisor.checks import runner as checks

    path = clientconf.config_path(ctx.obj.get("config"), os.environ)
    findings = checks.check_all(path)
    for finding in findings:
        click.echo(finding.format())
    click.echo(checks.summary(findings))
    sys.exit(1 if any(f.is_error for f in findings) else 0)



@click.command("systemd-unit")
@click.pass_context
def systemd_unit(ctx: click.Context) -> None:
    """Print a systemd unit for this config and this installation (like `pm2 startup`)."""
    from supervisor.systemd import unit

    config = get_config(ctx)
    click.echo(unit.render(config, fnud_executable()), nl=False)


def fnud_executable() -> str:
    """The installed `fnud` script next to this Python, else `python -m supervisor`."""
    import shutil

    beside = Path(sys.executable).parent / "fnud"
    if beside.exists():
        return str(beside)
    return shutil.which("fnud") or f"{sys.executable} -m supervisor"


