"""nginx.conf as crossplane reads it (supervisor.nginx.analyze): syntax and ``daemon``."""

from __future__ import annotations

import re

from supervisor.checks.finding import Finding, error
from supervisor.checks.inputs import Inputs
from supervisor.nginx import NginxConf

_ERRNO_RE = re.compile(r"^\[Errno \d+\] (?P<reason>.*?): '(?P<path>.*)'$")


def check(inputs: Inputs) -> list[Finding]:
    conf = inputs.conf
    if conf is None:
        return []  # missing or unreadable: reported against fnud.toml
    return [*syntax_errors(conf), *daemon_directive(conf)]


def _split(entry: str, files: tuple[str, ...]) -> tuple[str, int, str]:
    """Undo analyze()'s ``file:line: message``, dropping crossplane's own ``in file:line``."""
    for name in sorted(files, key=len, reverse=True):
        if entry.startswith(name + ":"):
            number, _, message = entry[len(name) + 1:].partition(": ")
            if number.isdecimal():
                suffix = f" in {name}:{number}"
                return name, int(number), message.removesuffix(suffix)
    return files[0], 0, entry


def syntax_errors(conf: NginxConf) -> list[Finding]:
    out = []
    for entry in conf.errors:
        path, line, message = _split(entry, conf.files)
        match = _ERRNO_RE.match(message)
        if match:
            message = f"cannot open {match.group('path')}: {match.group('reason')}"
        out.append(error(path, line, message, "nginx -t fails on this too"))
    return out


def daemon_directive(conf: NginxConf) -> list[Finding]:
    return [
        error(
            d.file, d.line, f"'daemon {' '.join(d.args)}' conflicts with fnud running nginx "
            "in the foreground (-g 'daemon off;')",
            "remove the daemon directive",
        )
        for d in conf.named("daemon")
    ]
