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
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from supervisor import cli_logs, clientconf, wire
from supervisor.clientconf import ClientConfig
from supervisor.runtime import Paths, lock_holder
from supervisor.statusview import render_status

if TYPE_CHECKING:
    from supervisor.config import Config

EXIT_CONFIG = 2
EXIT_NOT_RUNNING = 3


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"fnud: {message}", err=True)
    sys.exit(code)


def get_config(ctx: click.Context) -> Config:
    """The full config (start, check, systemd-unit, and thin commands finding no daemon)."""
    from supervisor.config import ConfigError, load_config

    path = clientconf.config_path(ctx.obj.get("config"), os.environ)
    try:
        return load_config(path)
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG)


def get_client(ctx: click.Context) -> ClientConfig:
    """What a thin command needs; a file clientconf cannot read gets config.py's error."""
    path = clientconf.config_path(ctx.obj.get("config"), os.environ)
    return clientconf.read(path) or clientconf.from_config(get_config(ctx))


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


# -- start -------------------------------------------------------------------------


@main.command()
@click.option("--foreground", is_flag=True, help="Stay attached (systemd, make run).")
@click.option("--ready-fd", type=int, default=None, hidden=True)
@click.option("--log-file", default=None, hidden=True)
@click.pass_context
def start(
    ctx: click.Context, foreground: bool, ready_fd: int | None, log_file: str | None
) -> None:
    """Start uWSGI then nginx; return once a request through nginx succeeds."""
    config = get_config(ctx)
    paths = Paths.from_config(config)
    holder = lock_holder(paths.lock)
    if holder is not None:
        message = f"fnud is already running (pid {holder}) on {paths.root}"
        if foreground:  # under systemd this must fail: it would wait for a READY=1
            fail(f"{message}; not starting a second one")
        click.echo(message)
        sys.exit(0)
    if foreground:
        sys.exit(run_foreground(config, ready_fd, log_file))
    sys.exit(start_background(config, paths))


def without_openssl() -> None:
    """Keep OpenSSL out of the daemon: it speaks plain HTTP ([health] url is http://) and
    hashes config files only, yet asyncio imports ssl and hashlib loads libcrypto, 5.9 MiB
    of its idle RSS (measured). With both marked absent, asyncio runs without TLS support
    and hashlib uses Python's builtin sha256 (the same digests). Not with [metrics]:
    prometheus_client imports ssl."""
    for name in ("ssl", "_ssl", "_hashlib"):
        if name not in sys.modules:
            sys.modules[name] = None  # type: ignore[assignment]


def run_foreground(config: Config, ready_fd: int | None, log_file: str | None) -> int:
    if not config.metrics.listen:
        without_openssl()
    import asyncio

    from supervisor import logsetup
    from supervisor.daemon import Daemon
    from supervisor.logfile import DaemonLog

    log = DaemonLog(Path(log_file)) if log_file else None
    if log is not None:
        log.open()
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    logsetup.configure()
    daemon = Daemon(config, os.environ, ready_fd=ready_fd, daemon_log=log)
    return asyncio.run(daemon.run())


def start_background(config: Config, paths: Paths) -> int:
    import select
    import subprocess

    try:
        paths.log_dir.mkdir(parents=True, exist_ok=True)
        with open(paths.daemon_log, "ab"):
            pass
    except OSError as exc:
        fail(f"{paths.log_dir}: cannot write the daemon log: {exc.strerror}")
    read_end, write_end = os.pipe()
    argv = [
        sys.executable, "-m", "supervisor", "-c", str(config.path),
        "start", "--foreground", "--ready-fd", str(write_end),
        "--log-file", str(paths.daemon_log),
    ]
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)  # a detached daemon is not the unit's main process
    daemon = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        pass_fds=(write_end,), start_new_session=True, env=env, cwd="/",
    )
    os.close(write_end)
    # the daemon checks, starts uWSGI, then nginx, then probes: bound the wait anyway
    budget = 3 * config.fnud.start_timeout + 60
    with os.fdopen(read_end, "rb") as reader:
        ready, _, _ = select.select([reader], [], [], budget)
        line = reader.readline().decode(errors="replace").strip() if ready else ""
    if not line and daemon.poll() is None:
        click.echo(f"fnud: no answer from the daemon after {budget:g}s; stopping it", err=True)
        daemon.terminate()
    kind, _, message = line.partition(" ")
    if kind == "READY":
        click.echo(f"fnud started (pid {daemon.pid}): {message}; serving {config.health.url}")
        return 0
    if kind == "RUNNING":
        click.echo(f"fnud is {message}")
        return 0
    # the daemon stops what it started before exiting: wait for it, then make sure
    deadline = config.fnud.stop_timeout + 15
    try:
        code = daemon.wait(deadline)
    except subprocess.TimeoutExpired:
        daemon.kill()
        code = daemon.wait()
    if kind == "ERROR":
        fail(f"start failed: {message}")
    fail(f"the daemon exited with code {code} before it was ready; see {paths.daemon_log}")


# -- stop ----------------------------------------------------------------------------


@main.command()
@click.pass_context
def stop(ctx: click.Context) -> None:
    """Stop nginx then uWSGI gracefully (SIGKILL after [fnud] stop_timeout)."""
    client = get_client(ctx)
    paths = client.paths
    holder = lock_holder(paths.lock)
    if holder is None:
        from supervisor import survivors

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
            on_progress=lambda text: click.echo(text),
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


# -- status --------------------------------------------------------------------------


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
            on_progress=(lambda text: click.echo(f"  {text}")) if progress else None,
        )
    except wire.ClientError as exc:
        fail(f"{failure}{exc}")
    except OSError as exc:
        fail(f"cannot reach the daemon at {paths.socket}: {exc}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@click.option("--watch", "watch", is_flag=True, help="Refresh every 2 s like top (Ctrl-C).")
@click.pass_context
def status(ctx: click.Context, as_json: bool, watch: bool) -> None:
    """Show programs, workers and the last reload. Exit 0 if all RUNNING, 3 if no daemon."""
    import json

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
    if lock_holder(lock) is None:
        get_config(ctx)  # a broken fnud.toml first (exit 2)
        if as_json:
            click.echo(json.dumps({"daemon": None, "programs": {}}))
        else:
            click.echo("fnud is not running")
        sys.exit(EXIT_NOT_RUNNING)
    result = call_daemon(ctx, client, "status")
    click.echo(json.dumps(result) if as_json else render_status(result))
    running = all(p["state"] == "RUNNING" for p in result["programs"].values())
    sys.exit(0 if running else 1)


# -- reload --------------------------------------------------------------------------


@main.command()
@click.option("--nginx", "only_nginx", is_flag=True, help="Only nginx (reloads even if unchanged).")
@click.option("--app", "only_app", is_flag=True, help="Only the uWSGI app.")
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
        click.echo(f"reload: {result['message']}")
        return
    click.echo(f"reloaded in {result['duration']:.1f}s: {result['message']}")


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
    click.echo(f"rolled back in {result['duration']:.1f}s: {result['message']}")


# -- check ---------------------------------------------------------------------------


@main.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Lint fnud.toml, the uWSGI ini and nginx.conf; exit 1 on any error."""
    from supervisor import checks

    path = clientconf.config_path(ctx.obj.get("config"), os.environ)
    findings = checks.check_all(path)
    for finding in findings:
        click.echo(finding.format())
    click.echo(checks.summary(findings))
    sys.exit(1 if any(f.is_error for f in findings) else 0)


# -- systemd -------------------------------------------------------------------------


@main.command("systemd-unit")
@click.pass_context
def systemd_unit(ctx: click.Context) -> None:
    """Print a systemd unit for this config and this installation (like `pm2 startup`)."""
    from supervisor import unit

    config = get_config(ctx)
    click.echo(unit.render(config, fnud_executable()), nl=False)


def fnud_executable() -> str:
    """The installed `fnud` script next to this Python, else `python -m supervisor`."""
    import shutil

    beside = Path(sys.executable).parent / "fnud"
    if beside.exists():
        return str(beside)
    return shutil.which("fnud") or f"{sys.executable} -m supervisor"


# -- logs ----------------------------------------------------------------------------


@main.command("reopen-logs")
@click.pass_context
def reopen_logs(ctx: click.Context) -> None:
    """Reopen every log file (after logrotate moved them); nothing restarts."""
    client = get_client(ctx)
    result = call_daemon(ctx, client, "reopen-logs")
    for line in result["reopened"]:
        click.echo(f"reopened {line}")
    for line in result.get("not_reopened", []):
        click.echo(f"not reopened: {line}")


main.add_command(cli_logs.logs)


# -- init ----------------------------------------------------------------------------


@main.command()
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
