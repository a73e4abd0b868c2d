"""Every check, in order: ``fnud check`` and the gate's lint.

Every problem is one :class:`Finding` (``path:line: error|warning: message (hint)``).
Nothing here raises for a user mistake: missing or unreadable files, bad TOML, an ini
without ``[uwsgi]``, nginx.conf that does not parse all become findings.

* :func:`check_all` -- the CLI: from the path of fnud.toml, including ``nginx -t``.
* :func:`errors_for` -- the daemon, before start and before every reload: the error
  lines only, without ``nginx -t`` (start and reload run it themselves right after),
  with ``check_ports=False`` on reload, where the running stack holds the ports.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from supervisor.checks import (
    fnud_toml,
    generations,
    gunicorn_conf,
    gunicorn_python,
    nginx_conf,
    nginx_test,
    ports_free,
    trust,
    upstream,
    uwsgi_ini,
    uwsgi_python,
)
from supervisor.checks.finding import Finding, Severity, error, summary
from supervisor.checks.inputs import Inputs, gather
from supervisor.config.schema import Config

__all__ = [
    "Finding",
    "Severity",
    "check_all",
    "check_config",
    "errors_for",
    "mode_line",
    "summary",
]

Check = Callable[[Inputs], list[Finding]]


def _internal(path: object, stage: str, exc: Exception) -> Finding:
    return error(
        path, 0, f"internal error in the {stage} check: {type(exc).__name__}: {exc}",
        "a bug in fnud check; the other checks still ran",
    )


def _guarded(stage: str, check: Check, inputs: Inputs) -> list[Finding]:
    try:
        return check(inputs)
    except Exception as exc:  # a bug must not hide the other findings
        return [_internal(inputs.config.path, stage, exc)]


def _ordered(findings: list[Finding], inputs: Inputs) -> list[Finding]:
    """fnud.toml first, then the ini, then nginx.conf and its includes; by line."""
    first = [inputs.config.path, *inputs.app_files, inputs.conf_path]
    rank = {str(path): number for number, path in reversed(list(enumerate(first)))}
    for finding in findings:
        rank.setdefault(finding.path, len(rank))
    return sorted(findings, key=lambda f: (rank[f.path], f.line))


def check_config(
    config: Config,
    *,
    run_nginx_test: bool = True,
    check_ports: bool = True,
    environ: Mapping[str, str] | None = None,
) -> list[Finding]:
    """Every finding for an already parsed config."""
    try:
        inputs = gather(config, environ)
    except Exception as exc:  # pragma: no cover - gather catches what it expects
        return [_internal(config.path, "reading", exc)]
    server = config.app_server  # "": balancer mode, nginx passes to other hosts
    stages: list[tuple[str, Check]] = [("fnud.toml", fnud_toml.check), ("trust", trust.check)]
    if server == "uwsgi":
        stages += [("uwsgi ini", uwsgi_ini.check), ("generations", generations.check)]
    elif server == "gunicorn":
        stages.append(("gunicorn", gunicorn_conf.check))
    stages.append(("nginx.conf", nginx_conf.check))
    if server:
        stages.append((f"nginx to {config.server_display}", upstream.check))
    stages.append(("port clash", ports_free.clashes))
    if check_ports:
        stages.append(("ports", ports_free.check))
    findings: list[Finding] = []
    for stage, check in stages:
        findings += _guarded(stage, check, inputs)
    if run_nginx_test and server:  # checks that run binaries: fnud check, not the gate
        python = uwsgi_python.check if server == "uwsgi" else gunicorn_python.check
        findings += _guarded(f"{config.server_display}'s python", python, inputs)
    if run_nginx_test and inputs.conf is not None and not inputs.conf.errors:
        # with a conf crossplane cannot parse, fnud's own -g flags are guesses (a second
        # `pid`), and nginx would only repeat the first syntax error reported above
        reported = {(f.path, f.line) for f in findings if f.is_error}
        findings += [
            f for f in _guarded("nginx -t", nginx_test.check, inputs)
            if not (f.is_error and (f.path, f.line) in reported)  # already said, with a hint
        ]
    return _ordered(findings, inputs)


def check_all(
    path: Path, *, run_nginx_test: bool = True, check_ports: bool = True
) -> list[Finding]:
    """Everything ``fnud check`` reports for the fnud.toml at ``path``; never raises."""
    try:
        config, findings = fnud_toml.load(path)
    except Exception as exc:  # pragma: no cover - load catches what it expects
        return [_internal(path, "fnud.toml", exc)]
    if config is None:
        return findings
    return findings + check_config(config, run_nginx_test=run_nginx_test, check_ports=check_ports)


def mode_line(path: Path) -> str:
    """Which mode the fnud.toml at ``path`` runs in ('' when it does not parse)."""
    config, _ = fnud_toml.load(path)
    return trust.mode_line(config, os.environ) if config is not None else ""


def errors_for(config: Config, check_ports: bool = True) -> list[str]:
    """The error lines (formatted) that must stop a start or a reload.

    Fast (no subprocess): ``nginx -t`` is left to the caller, which runs it anyway.
    Pass ``check_ports=False`` on reload: the running stack holds its own ports.
    """
    return [
        f.format()
        for f in check_config(config, run_nginx_test=False, check_ports=check_ports)
        if f.is_error
    ]
