"""uWSGI option values as uWSGI will see them: placeholders, paths, sockets.

An option value may hold ``%d``-style magic variables, ``%(option)`` references,
``@(file)`` contents and ``$(ENV)`` variables. :func:`resolve` expands what can be
known here and returns None for the rest, so that no check ever reports a path it
could not really compute.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from supervisor.ini import Option, UwsgiIni
from supervisor.ports import Address, parse_uwsgi_socket
from supervisor.uwsgi import expand_magic

_TOKEN_RE = re.compile(r"%\(([^)]*)\)|@\(([^)]*)\)|\$\(([^)]*)\)|%(.)", re.DOTALL)
_KNOWN_MAGIC = frozenset("dpsnec%")
#: whitespace then ``#`` or ``;``, or a value that starts with one: a would-be comment
INLINE_COMMENT_RE = re.compile(r"(?:^|\s)[#;]")

#: options that load more configuration: what this file lacks may come from there
INCLUDE_OPTIONS = frozenset(
    {"ini", "include", "inherit", "xml", "xmlconfig", "yaml", "yml", "json", "js", "config",
     "sqlite3", "ldap"}
)
#: socket options and the protocol they speak (None: the default, see ``protocol``)
SOCKET_PROTOCOLS: dict[str, str | None] = {
    "socket": None, "s": None, "uwsgi-socket": "uwsgi", "suwsgi-socket": "uwsgi",
    "ssl-socket": "uwsgi", "http-socket": "http", "https-socket": "http", "http": "http",
    "https": "http", "fastcgi-socket": "fastcgi", "fastcgi-nph-socket": "fastcgi",
    "scgi-socket": "scgi", "scgi-nph-socket": "scgi", "shared-socket": "",
}
#: options whose value is "address,cert,key..."
_COMMA_OPTIONS = frozenset({"https", "https-socket", "ssl-socket", "suwsgi-socket"})


def _resolve(
    value: str, ini_path: Path, ini: UwsgiIni, environ: Mapping[str, str], depth: int
) -> str | None:
    unknown = False

    def sub(match: re.Match[str]) -> str:
        nonlocal unknown
        ref, _file, env, magic = match.groups()
        if ref is not None:
            target = ini.value(ref)
            if target is not None and depth < 3:
                resolved = _resolve(target, ini_path, ini, environ, depth + 1)
                if resolved is not None:
                    return resolved
        elif env is not None:
            if env in environ:
                return environ[env]
        elif magic is not None and magic in _KNOWN_MAGIC:
            return expand_magic("%" + magic, ini_path)
        unknown = True  # @(file), %(_), an unset $(VAR), %k, %t ...: known only at runtime
        return ""

    out = _TOKEN_RE.sub(sub, value)
    return None if unknown else out


def resolve(
    value: str, ini_path: Path, ini: UwsgiIni, environ: Mapping[str, str]
) -> str | None:
    """``value`` with every placeholder expanded, or None if one cannot be known here."""
    return _resolve(value, ini_path, ini, environ, 0)


def has_comment(option: Option) -> bool:
    return bool(INLINE_COMMENT_RE.search(option.value))


def includes_others(ini: UwsgiIni) -> bool:
    return any(opt.key in INCLUDE_OPTIONS for opt in ini)


def resolve_path(
    value: str, base: Path | None, ini_path: Path, ini: UwsgiIni, environ: Mapping[str, str]
) -> Path | None:
    """An absolute path for ``value``, relative ones against ``base``; None if unknowable."""
    resolved = resolve(value, ini_path, ini, environ)
    if resolved is None or not resolved or "\0" in resolved:
        return None
    path = Path(resolved)
    if path.is_absolute():
        return path
    return base / path if base is not None else None


def exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):  # e.g. ENAMETOOLONG
        return False


def is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def workdir(ini: UwsgiIni, ini_path: Path, environ: Mapping[str, str]) -> Path | None:
    """uWSGI's cwd once it applied ``chdir`` (fnud starts it in the ini's directory).

    None when it cannot be known, or when ``chdir`` is broken (reported on its own).
    """
    option = ini.get("chdir")
    if option is None:
        return ini_path.parent
    if has_comment(option):
        return None
    path = resolve_path(option.value, ini_path.parent, ini_path, ini, environ)
    return path if path is not None and is_dir(path) else None


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
        address = parse_uwsgi_socket(value)
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
    default = (ini.value("protocol") or ini.value("socket-protocol") or "uwsgi").strip().lower()
    base = workdir(ini, ini_path, environ)  # sockets are bound after chdir
    out = []
    for opt in ini:
        if opt.key not in SOCKET_PROTOCOLS:
            continue
        protocol = SOCKET_PROTOCOLS[opt.key]
        value = opt.value.split(",")[0] if opt.key in _COMMA_OPTIONS else opt.value
        resolved = resolve(value, ini_path, ini, environ)
        endpoint: Endpoint | None = None
        if resolved and not has_comment(opt) and not resolved.startswith("="):
            address = tcp_address(resolved)
            if address is not None:
                endpoint = Endpoint(address=address)
            elif resolved.startswith("@"):
                endpoint = Endpoint(path=resolved)
            elif ":" not in resolved:
                path = resolve_path(resolved, base, ini_path, ini, environ)
                endpoint = Endpoint(path=str(path)) if path is not None else None
        out.append(Socket(opt, endpoint, default if protocol is None else protocol))
    return out


def section_line(text: str, section: str = "uwsgi") -> int:
    """Line of the ``[uwsgi]`` header (read like supervisor.ini does); 1 if absent."""
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip(" \t\r")
        if line.startswith("["):
            name = line[1:-1] if line.endswith("]") else line[1:]
            if name == section:
                return number
    return 1


def sections(text: str) -> list[str]:
    names = []
    for raw in text.split("\n"):
        line = raw.strip(" \t\r")
        if line.startswith("["):
            names.append(line[1:-1] if line.endswith("]") else line[1:])
    return names
