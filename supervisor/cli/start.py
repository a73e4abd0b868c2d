"""`fnud start`: detach a daemon and wait for its verdict, or run it in the foreground
(systemd, make run)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

from supervisor.runtime.lock import lock_holder
from supervisor.runtime.paths import Paths

if TYPE_CHECKING:
    from supervisor.config.schema import Config

from supervisor.cli.support import fail, get_config


@click.command()
@click.option("--foreground", is_flag=True, help="Stay attached (systemd, make run).")
@click.option("--ready-fd", type=int, default=None, hidden=True)
@click.option("--log-file", default=None, hidden=True)
@click.pass_context
def start(
    ctx: click.Context, foreground: bool, ready_fd: int | None, log_file: str | None
) -> None:
    """Start uWSGI then nginx; return once a request through nginx succeeds."""
    config = get_config(ctx)
    paths = config.paths
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

    from supervisor.daemon.loop import Daemon
    from supervisor.logs import logsetup
    from supervisor.logs.logfile import DaemonLog
    from supervisor.logs.sink import Sink

    log = DaemonLog(Path(log_file)) if log_file else None
    if log is not None:
        log.open()
        sys.stdout, sys.stderr = log_stream(1), log_stream(2)
    sink = Sink(2)  # fnud's own lines: never an exception, even on a full disk
    logsetup.configure(sink)  # type: ignore[arg-type]
    from supervisor.stack.plan import StackError

    try:
        daemon = Daemon(config, os.environ, ready_fd=ready_fd, daemon_log=log, sink=sink)
    except StackError as exc:  # e.g. an unknown [fnud] user: nothing was started
        if ready_fd is not None:
            os.write(ready_fd, f"ERROR {exc}\n".encode())
        print(f"fnud: {exc}", file=sys.stderr)
        return 1
    return asyncio.run(daemon.run())


def log_stream(fd: int) -> TextIO:
    """A text stream on the daemon's log file that, like Python's own stderr, writes
    whatever it is given: a lone surrogate (a reload's reason from JSON "\\udcff")
    raised UnicodeEncodeError out of the log call, and the reload crashed."""
    return open(
        fd, "w", buffering=1, closefd=False, encoding="utf-8", errors="backslashreplace"
    )


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


