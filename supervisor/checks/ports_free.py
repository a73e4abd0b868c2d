"""Every TCP address the stack will bind is free (``nginx -t`` ignores EADDRINUSE).

:func:`check` probes by binding. Ports held by this config's own running stack (the
daemon holding the runtime dir's lock, and its descendants) are not problems; the
reload path skips that check anyway. :func:`clashes` is static: nginx and uWSGI must
not want the same port.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import psutil

from supervisor.checks import uwsgi_values as values
from supervisor.checks.finding import Finding, error
from supervisor.checks.inputs import Inputs, running_daemon
from supervisor.common import ports
from supervisor.config.gunicorn import parse_bind
from supervisor.config.parse import locate
from supervisor.config.schema import Config
from supervisor.stack import survivors


@dataclass(frozen=True)
class Wanted:
    path: str
    line: int
    label: str
    address: ports.Address


def _listen(arg: str) -> ports.Address | None:
    try:
        address = ports.parse_nginx_listen(arg)
    except ValueError:
        return None
    return address if address is not None and 0 < address.port < 65536 else None


def _overlap(a: ports.Address, b: ports.Address) -> bool:
    wildcard = ("0.0.0.0", "::", "*", "")
    return a.port == b.port and (a.host == b.host or a.host in wildcard or b.host in wildcard)


def clashes(inputs: Inputs) -> list[Finding]:
    """An app server socket on a port nginx listens on: the second to bind fails."""
    listens = [w for w in wanted(inputs, unique=False) if w.label.startswith("listen ")]
    out = []
    for item in wanted(inputs, unique=False):
        if item.label.startswith("listen "):
            continue
        for listen in listens:
            if _overlap(item.address, listen.address):
                out.append(error(
                    item.path, item.line,
                    f"{item.label}: nginx listens on the same port ({listen.label}, "
                    f"{Path(listen.path).name}:{listen.line})",
                    "give the app server a port of its own (or a unix socket), and pass "
                    "nginx's requests to it",
                ))
                break
    return out


def wanted(inputs: Inputs, unique: bool = True) -> list[Wanted]:
    out = []
    if inputs.conf is not None:
        for d in inputs.conf.named("listen"):
            address = _listen(d.args[0]) if d.args else None
            if address is not None:
                out.append(Wanted(d.file, d.line, f"listen {d.args[0]}", address))
    bound = parse_bind(inputs.config.gunicorn.bind)
    if inputs.config.app_server == "gunicorn" and isinstance(bound, ports.Address):
        line = locate(inputs.toml_text, "gunicorn", "bind")
        out.append(Wanted(str(inputs.config.path), line,
                          f"[gunicorn] bind = {inputs.config.gunicorn.bind}", bound))
    if inputs.ini is not None:
        for sock in values.sockets(inputs.ini, inputs.ini_path, inputs.environ):
            if sock.endpoint is not None and sock.endpoint.address is not None:
                label = f"{sock.option.key} = {sock.option.value}"
                out.append(Wanted(str(inputs.ini_path), sock.option.line, label,
                                  sock.endpoint.address))
    if not unique:
        return out
    seen: set[tuple[str, int]] = set()
    first = []
    for item in out:
        key = (item.address.host, item.address.port)
        if key not in seen:
            seen.add(key)
            first.append(item)
    return first


def stack_pids(config: Config) -> set[int]:
    """The running daemon of this config and everything it started, and what a dead
    daemon left running (adopted by the next one, so not its children)."""
    own = survivors.pids(config)
    holder = running_daemon(config)
    if holder is None or holder <= 0:
        return own
    with contextlib.suppress(psutil.Error):
        proc = psutil.Process(holder)
        own |= {holder, *(child.pid for child in proc.children(recursive=True))}
    return own


def listeners() -> dict[int, set[int]]:
    """{port: pids listening on it}: one scan of every process's sockets."""
    out: dict[int, set[int]] = {}
    with contextlib.suppress(psutil.Error, OSError):
        for conn in psutil.net_connections(kind="inet"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.pid:
                out.setdefault(conn.laddr.port, set()).add(conn.pid)
    return out


def check(inputs: Inputs) -> list[Finding]:
    out = []
    own: set[int] | None = None
    listening: dict[int, set[int]] | None = None
    for item in wanted(inputs):
        try:
            problem = ports.in_use(item.address, name_holder=False)
        except (OSError, OverflowError, ValueError) as exc:
            problem = str(exc)
        if not problem:
            continue
        held = problem == ports.IN_USE  # else: no name, no such address
        if held:
            if own is None:  # scanned once, and only when a port is taken
                own, listening = stack_pids(inputs.config), listeners()
            if own and (listening or {}).get(item.address.port, set()) & own:
                continue  # this config's running stack holds it
            who = ports.holder(item.address.port)
            problem = f"{ports.IN_USE} by {who}"
        where = "" if str(item.address) in item.label else f" ({item.address})"
        out.append(error(
            item.path, item.line, f"{item.label}{where}: {problem}",
            who.how_to_free if held else "",
        ))
    return out
