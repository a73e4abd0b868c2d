"""``nginx -t`` with exactly fnud's flags, its messages mapped to ``file:line``.

nginx prints ``2024/01/01 12:00:00 [emerg] 123#123: unknown directive "foo" in
/path/nginx.conf:12``. The test needs the prefix directories (nginx opens its logs
and creates its temp paths under them); the ones this check had to create are
removed again afterwards, so ``fnud check`` leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import shutil
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

from supervisor.checks.finding import Finding, error, warning
from supervisor.checks.inputs import Inputs, running_daemon
from supervisor.config.parse import locate
from supervisor.nginx import configtest
from supervisor.nginx.driver import find_binary, prepare_prefix

T = TypeVar("T")

HINT = "nginx's own message, from nginx -t with fnud's flags"


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion, also when called from inside an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _topmost_missing(path: Path) -> Path | None:
    missing = None
    for candidate in (path, *path.parents):
        if candidate.exists():
            break
        missing = candidate
    return missing


@contextlib.contextmanager
def scratch_prefix(prefix: Path, keep: bool) -> Iterator[None]:
    """nginx's prefix dirs for the test; what did not exist before is removed after.

    ``keep``: a daemon runs on this runtime dir, leave everything as it is.
    """
    created = _topmost_missing(prefix)
    before = set(os.listdir(prefix)) if created is None else set()
    prepare_prefix(prefix)
    try:
        yield
    finally:
        if not keep:
            if created is not None:
                shutil.rmtree(created, ignore_errors=True)
            else:
                for name in set(os.listdir(prefix)) - before:
                    _remove_if_ours(prefix / name)


def _remove_if_ours(path: Path) -> None:
    """A new entry in an existing prefix: prepare_prefix's dirs, or what nginx -t leaves
    (an empty pid file, an empty temp dir). Anything else is not touched."""
    with contextlib.suppress(OSError):
        if path.is_symlink():
            return
        if path.is_dir():
            if path.name in ("logs", "tmp"):
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.rmdir()  # only if empty
        elif path.stat().st_size == 0:
            path.unlink()


def findings(result: configtest.ConfigTest) -> list[Finding]:
    """nginx -t's messages as findings; a failure without an error message still is one."""
    out = []
    for message in result.messages:
        failed = message.is_error or (not result.ok and not message.level)
        make = error if failed else warning
        out.append(make(message.file, message.line, f"nginx -t: {message.text}", HINT))
    if not result.ok and not any(f.is_error for f in out):
        out.append(error(result.conf_path, 0, "nginx -t failed", HINT))
    return out


def check(inputs: Inputs) -> list[Finding]:
    config, conf = inputs.config, inputs.conf
    if conf is None:
        return []
    binary = find_binary(config.nginx.binary)
    if binary is None:
        return []  # reported against fnud.toml
    prefix = config.nginx_prefix
    running = running_daemon(config) is not None
    try:
        with scratch_prefix(prefix, keep=running):
            result = run_sync(
                configtest.config_test(
                    binary, prefix, config.nginx.conf, conf, dict(inputs.environ)
                )
            )
    except (OSError, ValueError) as exc:
        key = "prefix" if config.nginx.prefix else None
        section = "nginx" if key else "fnud"
        line = locate(inputs.toml_text, section, key or "runtime_dir")
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return [error(
            config.path, line, f"cannot create nginx's prefix {prefix}: {reason}",
            "fnud runs nginx -p <runtime_dir>-nginx unless [nginx] prefix is set",
        )]
    return findings(result)
