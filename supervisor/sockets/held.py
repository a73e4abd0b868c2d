"""fnud holds the listening sockets; app-server generations and nginx masters inherit them.

A crashed master is replaced on the same socket (connections wait in the backlog
instead of being refused), and two generations can serve one socket side by side.
Each adapter says which of its sockets can be held and how its program takes them.
"""

from __future__ import annotations

import contextlib
import errno
import grp
import os
import pwd
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from supervisor.common.ports import Address, holder
from supervisor.common.runas import RunAs
from supervisor.common.trust import untrusted_reason
from supervisor.sockets.asuser import bind_as

DEFAULT_BACKLOG = 100  # what listen() gets unless the program's config says otherwise


class SocketError(OSError):
    """A socket fnud cannot bind: one line naming the ini or conf line."""


@dataclass(frozen=True)
class Spec:
    """One listening socket as the user's file names it."""

    where: str  # "uwsgi.ini:3" or "nginx.conf:12"
    line: int
    value: str  # as written: "127.0.0.1:3031", "/run/app.sock", "8080"
    address: Address | None  # None: a unix socket at ``path``
    path: str = ""
    mode: int = 0o666
    owner: str = ""  # "user" or "user:group" (chown-socket)

    @property
    def key(self) -> str:
        return self.path or str(self.address)


@dataclass
class Held:
    spec: Spec
    sock: socket.socket

    def __post_init__(self) -> None:
        # O_NONBLOCK belongs to the open file, shared with every child: nginx does not
        # set it on sockets it inherits, and one blocking accept() stalls a whole worker
        # (every connection it serves) until the next client arrives
        self.sock.setblocking(False)

    @property
    def fd(self) -> int:
        return self.sock.fileno()


def bind(spec: Spec, backlog: int = DEFAULT_BACKLOG, run_as: RunAs | None = None) -> Held:
    """Bind and listen; the socket is inheritable (passed with ``pass_fds``). A unix
    socket in a directory someone else than root may write is bound by ``run_as`` (the
    app's user), when there is one (see asuser.py)."""
    try:
        if spec.address is not None:
            sock = _bind_inet(spec.address, backlog)
        elif run_as is not None and untrusted_reason(os.path.dirname(spec.path)):
            sock = _bind_unix_as(spec, backlog, run_as)
        else:
            sock = _bind_unix(spec, backlog)
    except OSError as exc:
        why = exc.strerror or str(exc)
        if exc.errno == errno.EADDRINUSE and spec.address is not None:
            who = holder(spec.address.port)
            why = f"address already in use by {who}; {who.how_to_free}"
        raise SocketError(f"{spec.where}: cannot bind {spec.value}: {why}") from None
    return Held(spec, sock)  # close-on-exec here: children get it through pass_fds


def _bind_inet(address: Address, backlog: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    infos = socket.getaddrinfo(address.host, address.port, family, socket.SOCK_STREAM)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(infos[0][4])
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def _bind_unix(spec: Spec, backlog: int) -> socket.socket:
    with contextlib.suppress(FileNotFoundError):
        if Path(spec.path).is_socket():
            os.unlink(spec.path)  # a stale one (uWSGI unlinks before bind too)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(spec.path)
        if spec.mode >= 0:
            os.chmod(spec.path, spec.mode)
        if spec.owner:
            os.chown(spec.path, *_ids(spec.owner))
        sock.listen(backlog)
    except (OSError, KeyError) as exc:
        sock.close()
        if isinstance(exc, KeyError):
            raise OSError(0, f"unknown user or group in chown-socket {spec.owner}") from None
        raise
    return sock


def _bind_unix_as(spec: Spec, backlog: int, run_as: RunAs) -> socket.socket:
    group = None
    if spec.owner:
        try:
            uid, gid = _ids(spec.owner)
        except KeyError:
            raise OSError(0, f"unknown user or group in chown-socket {spec.owner}") from None
        if uid != run_as.uid:
            raise OSError(0, f"chown-socket {spec.owner}: the socket is {run_as.name}'s "
                          f"(it is bound by {run_as.name} in a directory it may write)")
        group = gid
    return bind_as(spec.path, spec.mode, group, backlog, run_as)


def _ids(owner: str) -> tuple[int, int]:
    user, _, group = owner.partition(":")
    entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    gid = entry.pw_gid
    if group:
        gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    return entry.pw_uid, gid


def bound_key(sock: socket.socket) -> str:
    """The key (``Spec.key``) of the address ``sock`` is bound to."""
    name = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        return name.decode(errors="replace") if isinstance(name, bytes) else str(name)
    return str(Address(str(name[0]), int(name[1])))


class Holder:
    """The sockets fnud holds for its lifetime, by the address they serve."""

    def __init__(self, run_as: RunAs | None = None) -> None:
        """``run_as``: the app's user, who binds unix sockets in its own directories."""
        self.run_as = run_as
        self.held: dict[str, Held] = {}
        self.inherited: dict[str, socket.socket] = {}  # from systemd's fd store, by key

    def ensure(self, specs: Iterable[Spec], backlog: int = DEFAULT_BACKLOG) -> list[Held]:
        """Hold every spec (taking an inherited one, else binding); return them in order."""
        out = []
        for spec in specs:
            held = self.held.get(spec.key)
            if held is None:
                sock = self.inherited.pop(spec.key, None)
                held = Held(spec, sock) if sock is not None else bind(
                    spec, backlog, self.run_as
                )
                self.held[spec.key] = held
            out.append(held)
        return out

    def adopt(self, spec: Spec, sock: socket.socket) -> None:
        self.held[spec.key] = Held(spec, sock)

    def keep_only(self, keys: Iterable[str]) -> None:
        """Close what no program names any more (a listen removed from the conf)."""
        wanted = set(keys)
        for key in list(self.held):
            if key not in wanted:
                self.held.pop(key).sock.close()

    def fds(self) -> dict[str, int]:
        """{address: fd}: the children inherited these numbers (for a restarted daemon)."""
        return {key: held.fd for key, held in self.held.items()}

    def close(self) -> None:
        for held in self.held.values():
            held.sock.close()
        self.held.clear()
        for sock in self.inherited.values():
            sock.close()
        self.inherited.clear()
