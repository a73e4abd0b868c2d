"""Does nginx reach the app server? Some ``uwsgi_pass``/``proxy_pass`` must lead to a
uWSGI ini socket, or ``proxy_pass`` to gunicorn's [gunicorn] bind.

A pass may name an address (``127.0.0.1:8001``, ``unix:/run/app.sock``,
``http://localhost:8001/``) or an ``upstream`` block whose ``server`` lines do. The
comparison treats ``localhost`` as 127.0.0.1 (or ::1), a uWSGI socket on all
interfaces (``:8001``, ``0.0.0.0:8001``) as reachable from any host name, and never
accuses what it cannot know: a pass through a ``$variable``, a socket value with an
unknown placeholder, a host name it would have to resolve.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import crossplane

from supervisor.checks import uwsgi_values as values
from supervisor.checks.finding import Finding, error
from supervisor.checks.inputs import Inputs
from supervisor.common.ports import Address
from supervisor.config.gunicorn import parse_bind
from supervisor.nginx.conf import Directive
from supervisor.uwsgi import options
from supervisor.uwsgi.ini import Option

#: nginx directives that pass a request on, and the protocol they speak
PASS_PROTOCOLS = {
    "uwsgi_pass": "uwsgi", "proxy_pass": "http", "fastcgi_pass": "fastcgi", "scgi_pass": "scgi",
}
_PASS_FOR = {"uwsgi": "uwsgi_pass", "http": "proxy_pass", "fastcgi": "fastcgi_pass",
             "scgi": "scgi_pass"}
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SCHEME_RE = re.compile(r"^([a-z]+)://")
_PORT_RE = re.compile(r"[0-9]{1,5}")


def upstream_servers(conf_path: Path) -> dict[str, list[str]]:
    """``upstream`` name -> the first argument of each of its ``server`` lines."""
    payload = crossplane.parse(str(conf_path), catch_errors=True, comments=False, combine=True)
    out: dict[str, list[str]] = {}

    def walk(block: list[dict[str, Any]]) -> None:
        for stmt in block:
            if stmt.get("directive") == "upstream" and stmt.get("args"):
                out[stmt["args"][0]] = [
                    s["args"][0] for s in stmt.get("block", [])
                    if s.get("directive") == "server" and s.get("args")
                ]
            elif "block" in stmt:
                walk(stmt["block"])

    for entry in payload.get("config", [])[:1]:
        walk(entry.get("parsed", []))
    return out


def _host_port(text: str, default_port: int | None) -> Address | None:
    if text.startswith("["):
        host, _, port = text[1:].partition("]")
        port = port.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    elif ":" in text:
        return None
    else:
        host, port = text, ""
    if not port:
        return Address(host, default_port) if default_port is not None else None
    return Address(host, int(port)) if _PORT_RE.fullmatch(port) else None


def _unix(path: str, base: Path) -> values.Endpoint:
    if path.startswith("@") or os.path.isabs(path):
        return values.Endpoint(path=os.path.normpath(path) if path.startswith("/") else path)
    return values.Endpoint(path=os.path.normpath(base / path))


@dataclass(frozen=True)
class Pass:
    directive: Directive
    protocol: str
    endpoints: tuple[values.Endpoint, ...] | None  # None: cannot be known here


def resolve_pass(
    directive: Directive, upstreams: dict[str, list[str]], base: Path
) -> Pass:
    target = directive.args[0] if directive.args else ""
    protocol = PASS_PROTOCOLS[directive.name]
    unknown = Pass(directive, protocol, None)
    if not target or "$" in target:
        return unknown
    scheme = ""
    match = _SCHEME_RE.match(target)
    if match:
        scheme, target = match.group(1), target[match.end():]
    if target.startswith("unix:"):
        path = target[5:].split(":", 1)[0]
        return Pass(directive, protocol, (_unix(path, base),)) if path else unknown
    host = target.split("/", 1)[0]
    if host in upstreams:
        endpoints = []
        for server in upstreams[host]:
            if server.startswith("unix:"):
                endpoints.append(_unix(server[5:], base))
                continue
            address = _host_port(server, 80)
            if address is None:
                return unknown
            endpoints.append(values.Endpoint(address=address))
        return Pass(directive, protocol, tuple(endpoints))
    address = _host_port(host, _DEFAULT_PORTS.get(scheme))
    return Pass(directive, protocol, (values.Endpoint(address=address),)) if address else unknown


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _hosts(host: str) -> set[str] | None:
    """The addresses a host stands for; None: every interface."""
    host = host.lower().strip("[]")
    if host in ("", "*", "0.0.0.0", "::"):
        return None
    if host == "localhost":
        return {"127.0.0.1", "::1"}
    return {host}


def reaches(target: values.Endpoint, listen: values.Endpoint) -> bool:
    if target.address is None or listen.address is None:
        return bool(target.path) and target.path == listen.path
    if target.address.port != listen.address.port:
        return False
    wanted, bound = _hosts(target.address.host), _hosts(listen.address.host)
    if wanted is None or bound is None or wanted & bound:
        return True
    # a host name would have to be resolved: do not accuse what we cannot know
    return not all(_is_ip(h) for h in wanted | bound)


def _reaches_socket(passing: Pass, socket: values.Socket) -> bool:
    listen = socket.endpoint
    return (
        passing.endpoints is not None and listen is not None
        and any(reaches(target, listen) for target in passing.endpoints)
    )


def _suggest(socket: values.Socket) -> str:
    endpoint = socket.endpoint or values.Endpoint(address=Address("127.0.0.1", 8001))
    if endpoint.address is not None:
        host = endpoint.address.host
        if _hosts(host) is None:
            host = "127.0.0.1"
        where = str(Address(host, endpoint.address.port))
    else:
        where = f"unix:{endpoint.path}"
    directive = _PASS_FOR.get(socket.protocol, "uwsgi_pass")
    return f"{directive} {'http://' if directive == 'proxy_pass' else ''}{where};"


def check(inputs: Inputs) -> list[Finding]:
    if inputs.config.app_server == "gunicorn":
        return check_gunicorn(inputs)
    ini, conf = inputs.ini, inputs.conf
    if ini is None or conf is None or not ini.has_section or conf.errors:
        return []  # a partial parse would make absence look like a mistake
    sockets = values.sockets(ini, inputs.ini_path, inputs.environ)
    if not sockets:
        if options.includes_others(ini):
            return []
        return [error(
            inputs.ini_path, ini.section_line,
            "no socket: uWSGI has nothing for nginx to pass requests to",
            "add e.g. 'socket = 127.0.0.1:8001' and 'uwsgi_pass 127.0.0.1:8001;' in nginx.conf",
        )]
    if any(s.endpoint is None for s in sockets):
        return []
    listening = ", ".join(
        f"{s.option.key} = {s.endpoint} ({inputs.ini_path.name}:{s.option.line})" for s in sockets
    )
    directives = conf.named(*PASS_PROTOCOLS)
    if not directives:
        http = conf.named("http")
        line = http[0].line if http else 0
        path = http[0].file if http else conf.files[0]
        return [error(
            path, line, f"no uwsgi_pass or proxy_pass: nginx never reaches uWSGI ({listening})",
            f"add '{_suggest(sockets[0])}' in a location",
        )]
    upstreams = upstream_servers(inputs.conf_path) if _names_upstream(directives) else {}
    passes = [resolve_pass(d, upstreams, inputs.conf_path.parent) for d in directives]
    if any(p.endpoints is None for p in passes):
        return []
    hits = [(p, s) for p in passes for s in sockets if _reaches_socket(p, s)]
    if any(s.protocol in ("", p.protocol) for p, s in hits):
        return []
    if hits:
        return [
            error(
                p.directive.file, p.directive.line,
                f"{p.directive.name} {p.directive.args[0]} reaches '{s.option.key} = "
                f"{s.option.value}' ({inputs.ini_path.name}:{s.option.line}), which speaks "
                f"{s.protocol}, not {p.protocol}",
                f"use '{_suggest(s)}', or change the uWSGI socket's protocol",
            )
            for p, s in hits
        ]
    return [
        error(
            p.directive.file, p.directive.line,
            f"{p.directive.name} {p.directive.args[0]} does not reach uWSGI ({listening})",
            f"e.g. '{_suggest(sockets[0])}'",
        )
        for p in passes
    ]


def _names_upstream(directives: list[Directive]) -> bool:
    def targets() -> Iterator[str]:
        for d in directives:
            if d.args:
                yield _SCHEME_RE.sub("", d.args[0]).split("/", 1)[0]
    return any(":" not in t and not _is_ip(t) for t in targets())


def check_gunicorn(inputs: Inputs) -> list[Finding]:
    """nginx talks HTTP to gunicorn: some ``proxy_pass`` (an address or an upstream)
    must reach [gunicorn] bind."""
    conf, config = inputs.conf, inputs.config
    bound = parse_bind(config.gunicorn.bind)
    if conf is None or conf.errors or bound is None:
        return []
    listen = values.Endpoint(path=bound) if isinstance(bound, str) else values.Endpoint(bound)
    socket = values.Socket(Option("bind", config.gunicorn.bind, 0), listen, "http")
    directives = conf.named(*PASS_PROTOCOLS)
    bind = f'[gunicorn] bind = "{config.gunicorn.bind}"'
    if not directives:
        http = conf.named("http")
        return [error(
            http[0].file if http else conf.files[0], http[0].line if http else 0,
            f"no proxy_pass: nginx never reaches gunicorn ({bind})",
            f"add '{_suggest(socket)}' in a location",
        )]
    upstreams = upstream_servers(inputs.conf_path) if _names_upstream(directives) else {}
    passes = [resolve_pass(d, upstreams, inputs.conf_path.parent) for d in directives]
    if any(p.endpoints is None for p in passes):
        return []
    hits = [p for p in passes if _reaches_socket(p, socket)]
    if any(p.protocol == "http" for p in hits):
        return []
    if hits:
        return [error(
            p.directive.file, p.directive.line,
            f"{p.directive.name} {p.directive.args[0]} reaches gunicorn ({bind}), which "
            f"speaks http, not {p.protocol}", f"use '{_suggest(socket)}'",
        ) for p in hits]
    return [error(
        p.directive.file, p.directive.line,
        f"{p.directive.name} {p.directive.args[0]} does not reach gunicorn ({bind})",
        f"e.g. '{_suggest(socket)}'",
    ) for p in passes]
