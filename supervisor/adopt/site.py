"""An nginx site file -> a main nginx.conf that includes it unchanged. Pure.

A site file (Debian's ``/etc/nginx/sites-enabled/NAME``) holds ``server {}`` blocks and
relies on the main ``nginx.conf`` around it. nginx resolves a relative ``include`` (and
``ssl_certificate``, ``auth_basic_user_file`` ...) against the directory of the main
conf it was started with (``-c``), so the new main conf gets a symlink beside it for
each such name (``uwsgi_params`` -> ``/etc/nginx/uwsgi_params``). Relative ``root``,
``alias`` and log paths are relative to nginx's prefix (``-p``), which fnud sets to
its own: those are reported, not fixed (the site file stays as it is).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor.adopt.errors import InitError
from supervisor.checks import uwsgi_values as values
from supervisor.checks.finding import Finding, warning
from supervisor.common.ports import parse_nginx_listen
from supervisor.uwsgi import options
from supervisor.uwsgi.ini import UwsgiIni

#: directives whose relative path nginx resolves against the main conf's directory
CONF_RELATIVE = frozenset({
    "include", "ssl_certificate", "ssl_certificate_key", "ssl_trusted_certificate",
    "ssl_client_certificate", "ssl_dhparam", "ssl_crl", "ssl_password_file",
    "ssl_stapling_file", "ssl_session_ticket_key", "auth_basic_user_file",
})
#: ... and against nginx's prefix (fnud's, not the distribution's)
PREFIX_RELATIVE = frozenset({
    "root", "alias", "access_log", "error_log", "client_body_temp_path", "proxy_temp_path",
    "fastcgi_temp_path", "uwsgi_temp_path", "scgi_temp_path",
})
#: directives of the main context: a file with these is a whole nginx.conf, not a site
MAIN_ONLY = frozenset({"http", "events", "worker_processes", "pid", "user", "daemon",
                       "load_module", "worker_rlimit_nofile"})
#: names fnud init writes beside the main conf: no link may take them
OWN_NAMES = frozenset({"nginx.conf", "uwsgi.ini", "fnud.toml", "run", "log", "run-nginx"})
_GLOB = frozenset("*?[")
_ERRNO_RE = re.compile(r"^\[Errno \d+\] (?P<reason>.*?): '(?P<path>.*)'$")
_NOT_PATHS = ("off", "stderr", "syslog:", "data:", "engine:", "memory:")
_TLS_LISTEN = frozenset({"ssl", "quic", "http3"})
TEMP_DIRS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")

UWSGI_PARAMS = (
    ("QUERY_STRING", "$query_string"), ("REQUEST_METHOD", "$request_method"),
    ("CONTENT_TYPE", "$content_type"), ("CONTENT_LENGTH", "$content_length"),
    ("REQUEST_URI", "$request_uri"), ("PATH_INFO", "$document_uri"),
    ("DOCUMENT_ROOT", "$document_root"), ("SERVER_PROTOCOL", "$server_protocol"),
    ("REQUEST_SCHEME", "$scheme"), ("HTTPS", "$https if_not_empty"),
    ("REMOTE_ADDR", "$remote_addr"), ("REMOTE_PORT", "$remote_port"),
    ("SERVER_PORT", "$server_port"), ("SERVER_NAME", "$server_name"),
)
PROXY_HEADERS = (
    ("Host", "$host"), ("X-Real-IP", "$remote_addr"),
    ("X-Forwarded-For", "$proxy_add_x_forwarded_for"), ("X-Forwarded-Proto", "$scheme"),
)


@dataclass(frozen=True)
class Stmt:
    """One directive of a parsed file; ``depth`` 0 is the file's top level."""

    file: str
    line: int
    name: str
    args: tuple[str, ...]
    depth: int


@dataclass(frozen=True)
class Ref:
    """A relative path nginx resolves against the main conf's directory."""

    file: str
    line: int
    directive: str
    arg: str

    @property
    def head(self) -> str:
        """The first component: the name the link beside the main conf gets."""
        return self.arg.split("/", 1)[0]

    @property
    def is_glob(self) -> bool:
        return bool(_GLOB & set(self.arg))


@dataclass(frozen=True)
class Link:
    name: str  # beside the main conf
    target: str  # absolute, in the site's own conf dir


@dataclass(frozen=True)
class Upstream:
    protocol: str  # "uwsgi" or "http"
    address: str  # "127.0.0.1:5000" or "unix:/run/app.sock"


def statements(payload: Mapping[str, Any]) -> tuple[Stmt, ...]:
    """Every directive of a crossplane payload (``crossplane.parse(single=True)``)."""
    out: list[Stmt] = []

    def walk(block: Iterable[Mapping[str, Any]], file: str, depth: int) -> None:
        for item in block:
            out.append(Stmt(file, int(item["line"]), str(item["directive"]),
                            tuple(str(a) for a in item.get("args", [])), depth))
            walk(item.get("block", []), file, depth + 1)

    for entry in payload.get("config", []):
        walk(entry.get("parsed", []), str(entry["file"]), 0)
    return tuple(out)


def first_error(payload: Mapping[str, Any]) -> InitError | None:
    """crossplane's first syntax error, as ``file:line: message``."""
    for entry in payload.get("config", []):
        for error in entry.get("errors", []):
            file, line = str(entry["file"]), int(error.get("line") or 0)
            text = str(error.get("error")).removesuffix(f" in {file}:{line}")
            unreadable = _ERRNO_RE.match(text)
            if unreadable:
                return InitError(unreadable.group("path"), 0,
                                 f"cannot read: {unreadable.group('reason')}")
            return InitError(file, line, f"nginx syntax: {text}")
    return None


def not_a_site(stmts: Iterable[Stmt], site: str) -> InitError | None:
    """A whole nginx.conf given as the site file: say so."""
    for stmt in stmts:
        if stmt.file == site and stmt.depth == 0 and stmt.name in MAIN_ONLY:
            return InitError(site, stmt.line, (
                f"'{stmt.name}' belongs to a main nginx.conf: --nginx-site takes a site "
                "file holding server {} blocks (like /etc/nginx/sites-enabled/default)"
            ))
    return None


def _is_path(arg: str) -> bool:
    return bool(arg) and "$" not in arg and not arg.startswith(_NOT_PATHS)


def conf_relative(stmts: Iterable[Stmt]) -> tuple[Ref, ...]:
    return tuple(
        Ref(s.file, s.line, s.name, s.args[0]) for s in stmts
        if s.name in CONF_RELATIVE and s.args and _is_path(s.args[0])
        and not s.args[0].startswith("/")
    )


def include_patterns(stmts: Iterable[Stmt], conf_dir: Path) -> tuple[str, ...]:
    """Every include, as the absolute pattern nginx opens (relative: in ``conf_dir``)."""
    return tuple(
        s.args[0] if s.args[0].startswith("/") else str(conf_dir / s.args[0])
        for s in stmts if s.name == "include" and s.args and _is_path(s.args[0])
    )


def links(refs: Iterable[Ref], conf_dir: Path) -> tuple[Link, ...]:
    """The symlinks that keep every relative reference's meaning beside the new conf."""
    out: dict[str, Link] = {}
    for ref in refs:
        head = ref.head
        if head in ("", ".", "..") or _GLOB & set(head) or head in OWN_NAMES:
            why = (f"fnud init writes its own '{head}' there" if head in OWN_NAMES
                   else "it cannot be linked")
            raise InitError(ref.file, ref.line, (
                f"{ref.directive} {ref.arg}: nginx resolves it against the main conf's "
                f"directory and {why}; write it as an absolute path "
                f"({conf_dir / ref.arg}) in the site file"
            ))
        out.setdefault(head, Link(head, str(conf_dir / head)))
    return tuple(out.values())


def prefix_relative(stmts: Iterable[Stmt]) -> tuple[Finding, ...]:
    return tuple(
        warning(s.file, s.line, (
            f"'{s.name} {s.args[0]}' is relative to nginx's prefix: under fnud that is "
            "its own ([nginx] prefix, default <runtime_dir>-nginx), not the distribution's"
        ), "make it an absolute path in the site file")
        for s in stmts
        if s.name in PREFIX_RELATIVE and s.args and _is_path(s.args[0])
        and not s.args[0].startswith("/")
    )


def url_for(listen: str, path: str) -> str | None:
    """The health URL for an nginx ``listen`` argument: wildcards become loopback."""
    address = parse_nginx_listen(listen)
    if address is None or not 0 < address.port < 65536:
        return None
    host = address.host
    if host in ("0.0.0.0", "*", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "[::1]"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{address.port}{path}"


def health_url(stmts: Iterable[Stmt], site: str, path: str) -> str:
    """Through the first plain-HTTP ``listen`` of the site (nginx's default: port 80)."""
    listens = [s for s in stmts if s.name == "listen" and s.args]
    listens.sort(key=lambda s: s.file != site)  # the site's own first, in file order
    plain = [s for s in listens
             if not _TLS_LISTEN & set(s.args[1:]) and not s.args[0].startswith("unix:")]
    if not listens:
        return url_for("80", path) or ""
    if not plain:
        first = listens[0]
        raise InitError(first.file, first.line, (
            "no plain-HTTP listen: fnud's health probe speaks http:// (add e.g. "
            "'listen 127.0.0.1:8081;' to a server block for it)"
        ))
    url = url_for(plain[0].args[0], path)
    if url is None:
        raise InitError(plain[0].file, plain[0].line,
                        f"cannot read 'listen {plain[0].args[0]}' as an address")
    return url


def upstream(ini: UwsgiIni) -> Upstream | None:
    """Where nginx reaches the (fixed, absolute-pathed) ini's app: its first plain
    uwsgi or HTTP socket."""
    protocol_option = options.last(ini, options.SOCKET_PROTOCOL)
    default = (protocol_option.value if protocol_option else "uwsgi").strip().lower()
    for opt in ini:
        if opt.key not in options.SOCKETS or opt.key in options.COMMA_SOCKETS:
            continue
        protocol = options.SOCKETS[opt.key] or default
        if protocol not in ("uwsgi", "http"):
            continue
        address = values.tcp_address(opt.value)
        if address is not None:
            host = address.host
            host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(host, host)
            host = f"[{host}]" if ":" in host and not host.startswith("[") else host
            return Upstream(protocol, f"{host}:{address.port}")
        if opt.value.startswith("/"):
            return Upstream(protocol, f"unix:{opt.value}")
    return None


def quoted(arg: str) -> str:
    """An nginx argument, quoted when it needs to be."""
    if arg and not any(ch.isspace() or ch in ";{}\"'#$\\" for ch in arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def default_server(listen: str, up: Upstream, uwsgi_params: str) -> str:
    """A server block passing every request to the app (no site file given)."""
    if up.protocol == "uwsgi":
        if uwsgi_params:
            passing = [f"include {quoted(uwsgi_params)};"]
        else:
            passing = [f"uwsgi_param {name} {value};" for name, value in UWSGI_PARAMS]
        passing.append(f"uwsgi_pass {up.address};")
    else:
        target = f"http://{up.address}:" if up.address.startswith("unix:") else (
            f"http://{up.address}"
        )
        passing = [f"proxy_pass {target};"]
        passing += [f"proxy_set_header {name} {value};" for name, value in PROXY_HEADERS]
    body = "\n".join(f"            {line}" for line in passing)
    return (
        "    server {\n"
        f"        listen {listen};\n"
        "        location / {\n"
        f"{body}\n"
        "        }\n"
        "    }\n"
    )


def main_conf(*, body: str, origin: str, mime_types: str) -> str:
    """The main nginx.conf: ``body`` (an include of the site, or a server block) in http."""
    types = f"    include {quoted(mime_types)};\n" if mime_types else ""
    temps = "".join(f"    {name}_temp_path tmp/{name};\n" for name in TEMP_DIRS)
    return (
        f"# Written by fnud init for {origin}.\n"
        "# fnud runs: nginx -p <prefix> -c <this file> -e <log_dir>/nginx.log -g 'daemon off;\n"
        "# pid <prefix>/nginx.pid;' (as root also 'user <[fnud] user>;'). Relative paths\n"
        "# below are relative to that prefix; relative includes to this file's directory.\n"
        "# Not included from the distribution's nginx.conf: modules-enabled (its load_module\n"
        "# lines are relative to the distribution's prefix; add 'load_module\n"
        "# /usr/lib/nginx/modules/NAME.so;' here if the site needs a module) and conf.d.\n"
        "worker_processes auto;\n\n"
        "events {\n    worker_connections 768;\n}\n\n"
        "http {\n"
        f"{types}"
        "    default_type application/octet-stream;\n"
        "    sendfile on;\n"
        "    # no request log; e.g. 'access_log /var/log/fnud/access.log;' logs them\n"
        "    # (`fnud reopen-logs` reopens it after logrotate)\n"
        "    access_log off;\n"
        f"{temps}\n"
        f"{body}"
        "}\n"
    )


def site_include(site: str) -> str:
    return f"    # the site file, unchanged\n    include {quoted(site)};\n"
