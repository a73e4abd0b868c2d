"""The warm preflight: the app check forked from a long-lived interpreter.

A cold preflight starts the app's python and imports everything, Flask and its kind
included, on every reload. The warm parent is that python, started once as the
workers' user with the app's environment, which never imports anything of the app: it
forks a fresh child for every check, and the child imports the app from the release and
runs the smoke GETs, exactly as a cold check would, then exits. After a check passed,
the parent imports (itself) what that child loaded from the standard library and
site-packages, so the next child finds it imported already.

The parent is replaced, and the check is cold, whenever what it was started with no
longer holds: the interpreter, the user, the environment, chdir or pythonpath, or any
package of its site-packages added, removed or changed. A release with its own copy of a
module the parent holds (a vendored library) is checked cold. If the parent crashes or
does not answer, the check is cold too; it dies with the daemon (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from supervisor.appserver.spec import AppSpec
from supervisor.common.runas import RunAs, popen_as
from supervisor.logs import logsetup
from supervisor.reload.appcheck import WARM
from supervisor.reload.preflight import (
    PreflightError,
    check_env,
    check_request,
    preflight,
    verdict,
)

START_TIMEOUT = 30.0


@dataclass(frozen=True)
class Key:
    """What a warm parent was started with; a check whose key differs gets a new one."""

    python: str
    interpreter: tuple[int, int]  # (inode, mtime_ns) of the interpreter's binary
    run_as: RunAs | None
    env: tuple[tuple[str, str], ...]
    chdir: str
    pythonpath: tuple[str, ...]

    @classmethod
    def of(cls, spec: AppSpec, env: Mapping[str, str], run_as: RunAs | None) -> Key:
        try:
            info = os.stat(spec.python)
            interpreter = (info.st_ino, info.st_mtime_ns)
        except OSError:
            interpreter = (0, 0)
        return cls(spec.python, interpreter, run_as, tuple(sorted(env.items())), spec.chdir,
                   spec.pythonpath)


def packages(site: list[str]) -> frozenset[tuple[str, str, int]]:
    """Every installed distribution and .pth file of ``site``, with its mtime: a package
    added, removed, upgraded or reinstalled changes this."""
    out = set()
    for directory in site:
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            if entry.name.endswith((".dist-info", ".egg-info", ".pth", ".egg-link")):
                with contextlib.suppress(OSError):
                    info = entry.stat(follow_symlinks=False)
                    out.add((directory, entry.name, info.st_mtime_ns))
    return frozenset(out)


class Parent:
    """One warm interpreter, talked to over its stdin and stdout (one JSON line each)."""

    def __init__(self, key: Key, proc: asyncio.subprocess.Process, site: list[str]) -> None:
        self.key = key
        self.proc = proc
        self.site = site
        self.packages = packages(site)

    @classmethod
    async def start(cls, key: Key, env: dict[str, str], label: str) -> Parent:
        """``label``: on its command line, to tell whose it is (the runtime dir)."""
        proc = await asyncio.create_subprocess_exec(
            key.python, "-c", WARM, str(os.getpid()), label,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL, env=env, cwd="/", start_new_session=True,
            limit=1 << 22, **popen_as(key.run_as),
        )
        parent = cls(key, proc, [])
        try:
            hello = await parent._read(START_TIMEOUT)
        except BaseException:
            await parent.close()
            raise
        parent.site = [str(s) for s in hello.get("site", [])]
        parent.packages = packages(parent.site)
        return parent

    @property
    def pid(self) -> int:
        return self.proc.pid

    def holds(self, key: Key) -> bool:
        """Still what ``key`` asks for, nothing installed or removed since it started."""
        return (self.proc.returncode is None and key == self.key
                and packages(self.site) == self.packages)

    async def _read(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise EOFError("the warm parent exited")
        answer = json.loads(line)
        if not isinstance(answer, dict):
            raise ValueError("not an answer")
        return answer

    async def check(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"spec": request, "timeout": timeout}).encode() + b"\n")
        await self.proc.stdin.drain()
        return await self._read(timeout + 5)

    async def close(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # its children too
        await asyncio.shield(self.proc.wait())


class WarmPreflight:
    """The gate's app check, warm when it can be, cold when it must be."""

    def __init__(self, label: str = "") -> None:
        """``label``: what the warm interpreter's command line names (the runtime dir:
        ps shows whose it is)."""
        self.label = label
        self.parent: Parent | None = None
        self._one = asyncio.Lock()  # one check at a time talks to the parent
        self.log = logsetup.get("preflight")
        self.cold_reason = ""  # why the last check was cold ('' when it was warm)

    async def check(
        self,
        spec: AppSpec,
        environ: Mapping[str, str],
        timeout: float = 60.0,
        run_as: RunAs | None = None,
        smoke: tuple[str, ...] = (),
    ) -> str:
        """What :func:`preflight.preflight` does; the loaded file or PreflightError."""
        if not spec.module and not spec.wsgi_file:
            return await preflight(spec, environ, timeout, run_as, smoke)
        env = check_env(spec, environ)
        async with self._one:  # the warm-up after a start may be checking right now
            answer = await self._warm(Key.of(spec, env, run_as), env,
                                      check_request(spec, smoke), timeout)
        if answer is None:
            return await preflight(spec, environ, timeout, run_as, smoke)
        return verdict(spec, answer)

    async def _warm(
        self, key: Key, env: dict[str, str], request: dict[str, Any], timeout: float
    ) -> dict[str, Any] | None:
        """The warm check's answer; None when this check must be cold (says why)."""
        try:
            parent = await self._parent(key, env)
            answer = await parent.check(request, timeout)
        except (OSError, EOFError, ValueError, asyncio.TimeoutError) as exc:
            await self.close()
            self._cold(f"the warm parent failed: {exc!r}")
            return None
        if "timeout" in answer:
            raise PreflightError(f"importing the app took longer than {timeout:.0f}s")
        if "cold" in answer:
            self._cold(str(answer["cold"]))
            return None
        self.cold_reason = ""
        return answer

    def _cold(self, why: str) -> None:
        self.cold_reason = why
        self.log.info("app check is cold", why=why)

    async def _parent(self, key: Key, env: dict[str, str]) -> Parent:
        if self.parent is not None and not self.parent.holds(key):
            self.log.info("warm parent replaced", pid=self.parent.pid)
            await self.close()
        if self.parent is None:
            self.parent = await Parent.start(key, env, self.label)
            self.log.info("warm parent started", pid=self.parent.pid)
        return self.parent

    async def close(self) -> None:
        parent, self.parent = self.parent, None
        if parent is not None:
            await parent.close()
