"""Which of the ini's sockets fnud can hold for uWSGI, and why some cannot."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from supervisor.common.ports import parse_host_port
from supervisor.sockets.held import Spec
from supervisor.uwsgi import options
from supervisor.uwsgi.ini import UwsgiIni

DEFAULT_BACKLOG = 100  # uWSGI's default `listen`


def uwsgi_specs(ini: UwsgiIni, ini_name: str, expand: Callable[[str], str]) -> list[Spec]:
    """The ini's holdable sockets, values expanded (``%d`` etc.) by ``expand``."""
    mode = _mode(ini.value("chmod-socket"))
    owner = (ini.value("chown-socket") or "").strip()
    out = []
    for opt in ini:
        if opt.key not in options.HOLDABLE_SOCKETS:
            continue
        value = expand(opt.value.strip())
        where = f"{ini_name}:{opt.line}"
        if value.startswith(("@", "fd://", "=")):
            continue  # abstract, already inherited, shared: the program's own business
        address = parse_host_port(value)
        if address is not None:
            out.append(Spec(where, opt.line, value, address))
        else:
            out.append(Spec(where, opt.line, value, None, path=value, mode=mode, owner=owner))
    return out


@dataclass(frozen=True)
class Unholdable:
    """Why the option at ``file:line`` keeps fnud from holding the ini's sockets."""

    file: str
    line: int
    reason: str


def unholdable(ini: UwsgiIni, ini_name: str) -> list[Unholdable]:
    """Why some of the ini's sockets cannot be held (none: all can)."""
    out = []
    for opt in ini:
        if opt.key in options.HOLDABLE_SOCKETS and opt.value.strip().startswith("@"):
            reason = f"abstract socket {opt.value.strip()} cannot be held by fnud"
            out.append(Unholdable(ini_name, opt.line, reason))
        if opt.key in options.UNSHAREABLE:
            reason = f"'{opt.key}' cannot share a held socket"
            out.append(Unholdable(ini_name, opt.line, reason))
    return out


def _mode(value: str | None) -> int:
    if value is None:
        return -1  # like uWSGI: the mode the umask gives
    text = value.strip() or "666"
    try:
        return int(text, 8)
    except ValueError:
        return 0o666
