"""Commands that read the config themselves: `fnud check`, `fnud systemd-unit` and
`fnud init`."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from supervisor.cli.support import fail, get_config
from supervisor.config import client as clientconf
from supervisor.runtime.lock import lock_holder

if TYPE_CHECKING:
    from supervisor.config.schema import Config

UNIT_PATH = "/etc/systemd/system/fnud.service"


@click.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Lint fnud.toml, the uWSGI ini and nginx.conf; exit 1 on any error."""
    from supervisor.checks import runner as checks

    path = clientconf.config_path(ctx.obj.get("config"), os.environ)
    findings = checks.check_all(path)
    mode = checks.mode_line(path)
    if mode:  # first: every line after it is a finding, the last one the summary
        click.echo(mode)
    for finding in findings:
        click.echo(finding.format())
    click.echo(checks.summary(findings))
    sys.exit(1 if any(f.is_error for f in findings) else 0)



@click.command("systemd-unit")
@click.option("--install", is_flag=True,
              help=f"Write it to {UNIT_PATH} and say what to run next.")
@click.option("--force", is_flag=True, help="With --install: replace a different unit there.")
@click.option("--unit-path", default="", hidden=True)
@click.option("--socket", "socket_unit", is_flag=True,
              help="The fnud.socket unit instead: systemd binds nginx's listens (rootless).")
@click.pass_context
def systemd_unit(
    ctx: click.Context, install: bool, force: bool, unit_path: str, socket_unit: bool
) -> None:
    """Print a systemd unit for this config and this installation (like `pm2 startup`)."""
    from supervisor.systemd import unit

    config = get_config(ctx)
    if socket_unit:
        text = _socket_unit(config)
        unit_path = unit_path or UNIT_PATH.replace(".service", ".socket")
    else:
        text = unit.render(config, fnud_executable())
        unit_path = unit_path or UNIT_PATH
    if not install:
        click.echo(text, nl=False)
        return
    install_unit(config, text, Path(unit_path), force)


def _socket_unit(config: Config) -> str:
    from supervisor.nginx.conf import analyze
    from supervisor.nginx.driver import NginxDriver
    from supervisor.systemd.socketunit import render_socket

    conf = analyze(config.nginx.conf)
    return render_socket(str(config.path), (spec.key for spec in NginxDriver.specs(conf)))


def install_unit(config: Config, text: str, path: Path, force: bool) -> None:
    """Write the unit (never silently over a different one), then the next commands."""
    from supervisor.common.files import write_atomic

    try:
        existing: str | None = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        existing = None
    except OSError as exc:
        fail(f"{path}: cannot read: {exc.strerror}")
    if existing is not None and existing != text and not force:
        fail(
            f"{path} exists and is not the unit for {config.path}: --force replaces it "
            f"(compare: fnud -c {config.path} systemd-unit | diff {path} -)"
        )
    if existing == text:
        click.echo(f"{path} is already the unit for {config.path}")
    else:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, text.encode(), 0o644)
        except OSError as exc:
            hint = " (run it as root)" if exc.errno in (1, 13) else ""
            fail(f"{path}: cannot write: {exc.strerror}{hint}")
        click.echo(f"wrote {path}")
    name = path.name.removesuffix(".service")
    click.echo("next:")
    if lock_holder(config.paths.lock) is not None:
        click.echo(f"  fnud -c {config.path} stop    # it runs outside systemd now")
    click.echo("  systemctl daemon-reload")
    click.echo(f"  systemctl enable --now {name}")
    click.echo(f"  systemctl status {name}; journalctl -u {name} -f")


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
