"""uWSGI option values as uWSGI will see them: placeholders, paths, sockets.

Placeholders are expanded by supervisor.uwsgi_options (strict: None for what cannot be
known here, so that no check ever reports a path it could not really compute).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from supervisor.checks.inputs import path_is
from supervisor.common.ports import Address, parse_host_port
from supervisor.uwsgi import options
from supervisor.uwsgi.ini import Option, UwsgiIni

#: whitespace then ``#`` or ``;``, or a value that starts with one: a would-be comment
INLINE_COMMENT_RE = re.compile(r"(?:^|\s)[#;]")


def has_comment(option: Option) -> bool:
    return bool(INLINE_COMMENT_RE.search(option.value))


def workdir(ini: UwsgiIni, ini_path: Path, environ: Mapping[str, str]) -> Path | None:
    """uWSGI's cwd once it applied ``chdir`` (fnud starts it in the ini's directory).

    None when it cannot be known, or when ``chdir`` is broken (reported on its own).
    """
    option = options.last(ini, options.CHDIR)
    if option is not None and has_comment(option):
        return None
    path = options.chdir(ini, ini_path, environ, strict=True)
    return path if path is not None and path_is(Path.is_dir, path) else None


@dataclass(frozen=True)
class Endpoint:
    """Where a socket listens: a TCP address, or a unix path ('@name': abstract)."""

    address: Address | None = None
    path: str = ""

    def __str__(self) -> str:
        return str(self.address) if self.address is not None else f"unix:{self.path}"


def tcp_address(value: str) -> Address | None:
    """A uWSGI TCP address, None for anything else (or a port out of range)."""
    try:
        address = parse_host_port(value)
    except ValueError:
        return None
    if address is None or not 0 < address.port < 65536:
        return None
    return address


@dataclass(frozen=True)
class Socket:
    option: Option
    endpoint: Endpoint | None  # None: cannot be known here
    protocol: str  # "uwsgi", "http", "fastcgi", "scgi"; "" for a shared socket


def sockets(ini: UwsgiIni, ini_path: Path, environ: Mapping[str, str]) -> list[Socket]:
    """Every socket the ini makes uWSGI listen on."""
    protocol_option = options.last(ini, options.SOCKET_PROTOCOL)
    default = (protocol_option.value if protocol_option else "uwsgi").strip().lower()
    base = workdir(ini, ini_path, environ)  # sockets are bound after chdir
    out = []
    for opt in ini:
        if opt.key not in options.SOCKETS:
            continue
        protocol = options.SOCKETS[opt.key]
        value = opt.value.split(",")[0] if opt.key in options.COMMA_SOCKETS else opt.value
        resolved = options.resolve(value, ini_path, ini, environ)
        endpoint: Endpoint | None = None
        if resolved and not has_comment(opt) and not resolved.startswith("="):
            address = tcp_address(resolved)
            if address is not None:
                endpoint = Endpoint(address=address)
            elif resolved.startswith("@"):
                endpoint = Endpoint(path=resolved)
            elif ":" not in resolved:
                path = options.resolve_path(resolved, base, ini_path, ini, environ)
                endpoint = Endpoint(path=str(path)) if path is not None else None
        out.append(Socket(opt, endpoint, default if protocol is None else protocol))
    return out
