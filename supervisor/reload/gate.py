"""The gate: every check that must pass before anything is signalled.

One sequence for start, reload and every reload trigger:
re-read fnud.toml -> lint -> ``nginx -t`` -> app preflight in a fresh interpreter.
The gate checks and never switches: it returns what passed (the plan, the parsed
nginx.conf, the app spec) or raises :class:`Refused` carrying one structured
:class:`Failure`. This is the only module that runs the app preflight.
"""

from __future__ import annotations

import contextlib
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from supervisor.appserver.spec import AppSpec
from supervisor.checks import runner as checks
from supervisor.common.childenv import child_env
from supervisor.common.progress import Emit, quiet
from supervisor.config.parse import ConfigError, load_config, restart_required
from supervisor.config.schema import Config
from supervisor.nginx.conf import NginxConf
from supervisor.nginx.configtest import config_test
from supervisor.reload.preflight import PreflightError, preflight
from supervisor.reload.warm import WarmPreflight
from supervisor.runtime.release import Release
from supervisor.stack.plan import Plan, StackError


@dataclass(frozen=True)
class Failure:
    """Which check refused, and its one-line message (``file:line: ...`` where known)."""

    check: str  # "config", "binaries", "lint", "root", "nginx -t", "preflight"
    message: str
    more: int = 0  # further errors of the same check (fnud check lists them all)

    def __str__(self) -> str:
        text = self.message
        if self.check == "nginx -t":
            text = f"nginx -t failed: {text}"
        elif self.check == "preflight":
            text = f"app does not load: {text}"
        if self.more:
            text += f" (and {self.more} more; run fnud check)"
        return text


class Refused(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(str(failure))
        self.failure = failure


@dataclass(frozen=True)
class Passed:
    plan: Plan  # what the checked config means: the stack applies it
    conf: NginxConf | None  # None when nginx was not asked for
    spec: AppSpec | None  # None when the app was not asked for


@dataclass(frozen=True)
class Request:
    nginx: bool = True  # parse nginx.conf and run nginx -t
    app: bool = True  # import the app in a fresh interpreter
    reread: bool = True  # read fnud.toml again (a reload); False: the config in force
    check_ports: bool = False  # at start: the ports must be free (nginx -t ignores it)


@dataclass(frozen=True)
class Checkers:
    """The checks themselves, injected so the gate's order and verdicts can be tested
    without nginx or the app server."""

    binaries: Callable[[Plan], None]  # raises StackError
    lint: Callable[[Config, bool], list[str]]  # (config, check_ports) -> error lines
    root: Callable[[Plan], str]  # why the app must not run as root, or ""
    nginx_test: Callable[[Plan, NginxConf], Awaitable[tuple[bool, str]]]
    import_app: Callable[[Plan, AppSpec], Awaitable[str]]  # raises PreflightError


def real_checkers(warm: WarmPreflight | None = None) -> Checkers:
    """The real checks; the app check forks from ``warm`` where the config allows."""

    async def nginx_test(plan: Plan, conf: NginxConf) -> tuple[bool, str]:
        config = plan.config
        result = await config_test(
            plan.nginx_binary(), config.nginx_prefix, config.nginx.conf, conf,
            child_env(plan.environ), *plan.identity(),
        )
        return result.ok, result.text

    async def import_app(plan: Plan, spec: AppSpec) -> str:
        smoke = smoke_paths(plan.config)
        if warm is not None and plan.config.reload.warm_preflight:
            return await warm.check(spec, plan.environ, run_as=plan.run_as, smoke=smoke)
        return await preflight(spec, plan.environ, run_as=plan.run_as, smoke=smoke)

    return Checkers(
        binaries=Plan.check_binaries,
        lint=lambda config, ports: checks.errors_for(config, check_ports=ports),
        root=Plan.root_refusal,
        nginx_test=nginx_test,
        import_app=import_app,
    )


def smoke_paths(config: Config) -> tuple[str, ...]:
    """The health URL's path, then ``[health] smoke``: requested in the preflight."""
    url = urllib.parse.urlsplit(config.health.url)
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    return (path, *(p for p in config.health.smoke if p != path))


class Gate:
    def __init__(
        self, current: Callable[[], Plan], checkers: Checkers | None = None,
        warm: bool = False,
    ) -> None:
        """``current``: the plan in force (its config is what a reload re-reads).
        ``warm``: keep a warm parent for the app check (the daemon; fnud init does not)."""
        self.current = current
        self.warm = (
            WarmPreflight(str(current().paths.root)) if warm and checkers is None else None
        )
        self.checkers = checkers or real_checkers(self.warm)

    async def warm_up(self) -> None:
        """Start the warm interpreter now (after a start or an adoption), so that the
        first reload's check is warm too: one check of the app in force, whose verdict
        does not matter here."""
        plan = self.current()
        if self.warm is None or not plan.config.reload.warm_preflight:
            return
        if plan.config.balancer:
            return
        with contextlib.suppress(PreflightError, StackError, OSError):
            await self.warm.check(plan.app(), plan.environ, run_as=plan.run_as,
                                  smoke=smoke_paths(plan.config))

    def preflight_status(self) -> dict[str, Any]:
        """The warm interpreter's pid (None: none now) and why the last check was cold."""
        parent = self.warm.parent if self.warm is not None else None
        return {
            "warm": parent.pid if parent is not None else None,
            "cold_reason": self.warm.cold_reason if self.warm is not None else "",
        }

    async def close(self) -> None:
        """Nothing of the checks outlives the daemon (the warm parent)."""
        if self.warm is not None:
            await self.warm.close()

    async def run(self, request: Request, emit: Emit = quiet) -> Passed:
        """Run every check ``request`` asks for, in order; raise :class:`Refused` at the
        first that fails. Nothing is signalled and the stack's plan is not replaced."""
        check = self.checkers
        plan = self._plan(request.reread)
        try:
            check.binaries(plan)
            conf = plan.nginx_conf if request.nginx else None
            spec = plan.app() if request.app else None
        except StackError as exc:
            raise Refused(Failure("binaries", str(exc))) from None
        errors = check.lint(plan.config, request.check_ports)
        if errors:
            raise Refused(Failure("lint", errors[0], len(errors) - 1))
        refusal = check.root(plan)
        if refusal:
            raise Refused(Failure("root", refusal))
        if conf is not None:
            await emit("nginx -t")
            ok, text = await check.nginx_test(plan, conf)
            if not ok:
                raise Refused(Failure("nginx -t", text))
        if spec is not None:
            await emit(f"importing {spec.label} in a fresh interpreter")
            try:
                await check.import_app(plan, spec)
            except PreflightError as exc:
                raise Refused(Failure("preflight", str(exc))) from None
        return Passed(plan, conf, spec)

    async def release(self, release: Release, emit: Emit = quiet) -> AppSpec:
        """Preflight a release fnud goes back to (``fnud rollback``): what it ran with,
        as a generation would load it. It passed the gate once, but its directory may
        have been edited since."""
        plan = self.current()
        spec = plan.release_app(release)
        await emit(f"importing {spec.label} from {spec.chdir} in a fresh interpreter")
        try:
            await self.checkers.import_app(plan, spec)
        except PreflightError as exc:
            raise Refused(Failure("preflight", str(exc))) from None
        return spec

    def _plan(self, reread: bool) -> Plan:
        current = self.current()
        if not reread:
            return current
        try:
            config = load_config(current.config.path)
        except ConfigError as exc:
            raise Refused(Failure("config", str(exc))) from None
        needs_restart = restart_required(current.config, config)
        if needs_restart:
            raise Refused(Failure(
                "config",
                f"{config.path}: {', '.join(needs_restart)} changed: that needs "
                "fnud stop && fnud start, not a reload",
            ))
        return Plan(config, current.environ)
