"""nginx.conf as crossplane reads it (supervisor.nginx.analyze): syntax and ``daemon``."""

from __future__ import annotations

from supervisor.checks.finding import Finding, error
from supervisor.checks.inputs import Inputs
from supervisor.nginx.conf import NginxConf


def check(inputs: Inputs) -> list[Finding]:
    conf = inputs.conf
    if conf is None:
        return []  # missing or unreadable: reported against fnud.toml
    return [*syntax_errors(conf), *daemon_directive(conf)]


def syntax_errors(conf: NginxConf) -> list[Finding]:
    return [error(e.file, e.line, e.text, "nginx -t fails on this too") for e in conf.errors]


def daemon_directive(conf: NginxConf) -> list[Finding]:
    return [
        error(
            d.file, d.line, f"'daemon {' '.join(d.args)}' conflicts with fnud running nginx "
            "in the foreground (-g 'daemon off;')",
            "remove the daemon directive",
        )
        for d in conf.named("daemon")
    ]
