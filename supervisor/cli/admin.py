"""Commands that read the config themselves: `fnud check` and `fnud systemd-unit`."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


@click.command()
@click.option("--ini", required=True, metavar="PATH", help="Your uwsgi.ini (read only).")
@click.option("--nginx-site", "site", default="", metavar="PATH",
              help="Your nginx site file (server {} blocks), included unchanged.")
@click.option("--dir", "directory", default="fnud", show_default=True, metavar="DIR",
              help="Where uwsgi.ini, nginx.conf and fnud.toml are written.")
@click.option("--venv", default="", metavar="PATH", help="The app's virtualenv.")
@click.option("--health-path", default="/", show_default=True, metavar="PATH",
              help="GET through nginx by fnud's probe (and through the app by the preflight).")
@click.option("--listen", default="", metavar="ADDR",
              help="nginx's listen without --nginx-site.  [default: 80]")
@click.option("--runtime-dir", default="", metavar="P",
              help="[fnud] runtime_dir (root: /run/fnud, else DIR/run).")
@click.option("--log-dir", default="", metavar="P",
              help="[fnud] log_dir (root: /var/log/fnud, else DIR/log).")
@click.option("--user", default="", metavar="U", help="[fnud] user (root: www-data).")
@click.option("--uwsgi-binary", default="", metavar="PATH",
              help="The uwsgi fnud runs (default: beside fnud's python, else PATH).")
@click.option("--nginx-conf-dir", default="", metavar="DIR",
              help="Where the site's relative includes lead (default: the directory above the "
              "site holding nginx.conf, else /etc/nginx).")
@click.option("--force", is_flag=True, help="Overwrite files in DIR.")
@click.option("--dry-run", is_flag=True, help="Print the files and edits; write nothing.")
def init(**kwargs: Any) -> None:
    """Make a fnud directory from your uwsgi.ini (and nginx site); list every edit."""
    from supervisor.adopt import plan

    sys.exit(plan.run(plan.Options(**kwargs), click.echo, lambda x: click.echo(x, err=True)))
