"""Prove the app imports in a fresh interpreter, the way the app server will load it.

Same python (the app's virtualenv, else the configured one, else fnud's own), same
chdir, pythonpath and env, same ``module``/``wsgi-file`` and ``callable`` (a factory
call where the server allows one), the same stand-ins for the server's own modules.
A failure is a PreflightError with the file and line where known, and ``ErrorType:
message``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import Mapping
from typing import Any

from supervisor.appserver.spec import AppSpec
from supervisor.common.childenv import child_env
from supervisor.common.runas import RunAs, popen_as
from supervisor.reload.appcheck import COLD


class PreflightError(Exception):
    """The app cannot be loaded: where (``file``, ``line``; "" and 0 when unknown) and
    what (``message``). ``str()`` is one line, ``file:line: message``."""

    def __init__(self, message: str, file: str = "", line: int = 0) -> None:
        self.file, self.line, self.message = file, line, message
        where = (f"{file}:{line}: " if line > 0 else f"{file}: ") if file else ""
        super().__init__(where + message)


def check_env(spec: AppSpec, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment the app is imported with: the app server's, and the ini's env."""
    env = child_env(environ)
    env.update(dict(spec.env))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("PYTHONPATH", None)
    return env


def check_request(spec: AppSpec, smoke: tuple[str, ...]) -> dict[str, Any]:
    """What ``run_check`` (appcheck.py) is given."""
    return {
        "chdir": spec.chdir,
        "pythonpath": list(spec.pythonpath),
        "module": spec.module,
        "wsgi_file": spec.wsgi_file,
        "callable": spec.callable,
        "stubs": list(spec.stubs),
        "factory": spec.factory,
        "file_prefix": spec.file_prefix,
        "smoke": list(smoke),
    }


def verdict(spec: AppSpec, result: Mapping[str, Any]) -> str:
    """The loaded file, from a check's answer; else PreflightError with its reason."""
    if result.get("ok"):
        return str(result.get("file") or spec.label)
    file, number = str(result.get("file") or ""), int(result.get("line") or 0)
    raise PreflightError(str(result.get("error")), file, number)


async def preflight(
    spec: AppSpec,
    environ: Mapping[str, str],
    timeout: float = 60.0,
    run_as: RunAs | None = None,
    smoke: tuple[str, ...] = (),
) -> str:
    """Import the app in a fresh interpreter; return the loaded file or raise PreflightError.

    ``run_as``: import as the app's user, from the exec on (fnud may be root: the app's
    code, its venv's .pth files and sitecustomize never run as root), with its groups.
    ``smoke``: paths to GET through the app's WSGI callable there; anything but 2xx/3xx
    fails.
    """
    if not spec.module and not spec.wsgi_file:
        raise PreflightError("no app configured: the app server's config names no module")
    payload = json.dumps(check_request(spec, smoke))
    out, err, returncode = await _run_probe(spec, check_env(spec, environ), payload, timeout,
                                            run_as)
    return _verdict(spec, out, err, returncode)


async def _run_probe(
    spec: AppSpec, env: dict[str, str], payload: str, timeout: float,
    run_as: RunAs | None,
) -> tuple[bytes, bytes, int | None]:
    """Run the import in its own session; (stdout, stderr, exit code)."""
    try:
        proc = await asyncio.create_subprocess_exec(
            spec.python, "-c", COLD, payload,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd="/",  # the check enters the app's directory itself, as the app's user
            start_new_session=True,
            **popen_as(run_as),
        )
    except OSError as exc:
        raise PreflightError(f"cannot run the app's python: {exc.strerror}", spec.python) from None
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        raise PreflightError(
            f"{spec.label}: importing the app took longer than {timeout:.0f}s"
        ) from None
    finally:  # timed out, or fnud stopping: nothing of the import may outlive us
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            await asyncio.shield(proc.wait())
    return out, err, proc.returncode


def _verdict(spec: AppSpec, out: bytes, err: bytes, returncode: int | None) -> str:
    """The loaded file from the probe's JSON line, or PreflightError with its reason."""
    for line in reversed(out.decode(errors="replace").splitlines()):
        if line.startswith("{"):
            try:
                result = json.loads(line)
            except ValueError:
                continue
            return verdict(spec, result)
    tail = err.decode(errors="replace").strip().splitlines()
    reason = tail[-1] if tail else f"exit code {returncode}"
    raise PreflightError(f"{spec.label}: importing the app failed: {reason}")
