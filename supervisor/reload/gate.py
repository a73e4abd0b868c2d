"""The gate: every check that must pass before anything is signalled.

One sequence for start, reload and every reload trigger:
re-read fnud.toml -> lint -> ``nginx -t`` -> app preflight in a fresh interpreter.
The gate checks and never switches: it returns what passed (the config, the parsed
nginx.conf, the app spec) or raises :class:`Refused` carrying one structured
:class:`Failure`. This is the only module that runs the app preflight.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from supervisor import checks
from supervisor.common.childenv import child_env
from supervisor.config.schema import Config, ConfigError, load_config, restart_required
from supervisor.nginx import conf as nginx
from supervisor.reload.preflight import AppSpec, PreflightError, app_spec, preflight
from supervisor.stack.stack import Stack, StackError, identity
from supervisor.uwsgi.driver import render_ini
from supervisor.uwsgi.ini import parse_ini

Emit = Callable[[str], Awaitable[None]]


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
    config: Config
    conf: nginx.NginxConf | None  # None when nginx was not asked for
    spec: AppSpec | None  # None when the app was not asked for


@dataclass(frozen=True)
class Request:
    nginx: bool = True  # parse nginx.conf and run nginx -t
    app: bool = True  # import the app in a fresh interpreter
    reread: bool = True  # read fnud.toml again (a reload); False: the config in force
    check_ports: bool = False  # at start: the ports must be free (nginx -t ignores it)


async def _quiet(_: str) -> None:
    return None


@dataclass(frozen=True)
class Checkers:
    """The checks themselves, injected so the gate's order and verdicts can be tested
    without nginx or uWSGI (tests/test_gate.py)."""

    binaries: Callable[[Config], None]  # raises StackError
    lint: Callable[[Config, bool], list[str]]  # (config, check_ports) -> error lines
    root: Callable[[Config], str]  # why the app must not run as root, or ""
    nginx_test: Callable[[Config, nginx.NginxConf], Awaitable[tuple[bool, str]]]
    import_app: Callable[[Config, AppSpec], Awaitable[str]]  # raises PreflightError


def real_checkers(stack: Stack) -> Checkers:
    async def nginx_test(config: Config, conf: nginx.NginxConf) -> tuple[bool, str]:
        result = await nginx.config_test(
            stack.nginx_binary(config), config.nginx_prefix, config.nginx.conf, conf,
            child_env(stack.environ), *identity(config),
        )
        return result.ok, result.text

    async def import_app(config: Config, spec: AppSpec) -> str:
        return await preflight(
            spec, stack.environ, owner=stack.owner(config), smoke=smoke_paths(config)
        )

    return Checkers(
        binaries=stack.check_binaries,
        lint=lambda config, ports: checks.errors_for(config, check_ports=ports),
        root=stack.root_refusal,
        nginx_test=nginx_test,
        import_app=import_app,
    )


def smoke_paths(config: Config) -> tuple[str, ...]:
    """The health URL's path, then ``[health] smoke``: requested in the preflight."""
    url = urllib.parse.urlsplit(config.health.url)
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    return (path, *(p for p in config.health.smoke if p != path))


class Gate:
    def __init__(self, stack: Stack, checkers: Checkers | None = None) -> None:
        self.stack = stack
        self.checkers = checkers or real_checkers(stack)

    async def run(self, request: Request, emit: Emit = _quiet) -> Passed:
        """Run every check ``request`` asks for, in order; raise :class:`Refused` at the
        first that fails. Nothing is signalled and the stack's config is not replaced."""
        check = self.checkers
        config = self._config(request.reread)
        try:
            check.binaries(config)
            conf = self.stack.nginx_conf(config) if request.nginx else None
            spec = self.stack.app(config) if request.app else None
        except StackError as exc:
            raise Refused(Failure("binaries", str(exc))) from None
        errors = check.lint(config, request.check_ports)
        if errors:
            raise Refused(Failure("lint", errors[0], len(errors) - 1))
        refusal = check.root(config)
        if refusal:
            raise Refused(Failure("root", refusal))
        if conf is not None:
            await emit("nginx -t")
            ok, text = await check.nginx_test(config, conf)
            if not ok:
                raise Refused(Failure("nginx -t", text))
        if spec is not None:
            await emit(f"importing {spec.label} in a fresh interpreter")
            try:
                await check.import_app(config, spec)
            except PreflightError as exc:
                raise Refused(Failure("preflight", str(exc))) from None
        return Passed(config, conf, spec)

    async def release(
        self, source: tuple[str, dict[int, str]], emit: Emit = _quiet
    ) -> AppSpec:
        """Preflight a release fnud goes back to (``fnud rollback``): the ini text and
        pinned paths it ran with, as a generation would render them. It passed the gate
        once, but its directory may have been edited since."""
        config = self.stack.config
        text, pinned = source
        ini = parse_ini(render_ini(text, config.uwsgi.ini, replace=pinned))
        spec = app_spec(ini, config.uwsgi.ini, config.uwsgi.python, self.stack.environ)
        await emit(f"importing {spec.label} from {spec.chdir} in a fresh interpreter")
        try:
            await self.checkers.import_app(config, spec)
        except PreflightError as exc:
            raise Refused(Failure("preflight", str(exc))) from None
        return spec

    def _config(self, reread: bool) -> Config:
        current = self.stack.config
        if not reread:
            return current
        try:
            config = load_config(current.path)
        except ConfigError as exc:
            raise Refused(Failure("config", str(exc))) from None
        needs_restart = restart_required(current, config)
        if needs_restart:
            raise Refused(Failure(
                "config",
                f"{config.path}: {', '.join(needs_restart)} changed: that needs "
                "fnud stop && fnud start, not a reload",
            ))
        return config
