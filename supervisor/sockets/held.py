"""fnud holds the listening sockets; uWSGI generations and nginx masters inherit them.

A crashed master is replaced on the same socket (connections wait in the backlog
instead of being refused), and two uWSGI generations can serve one socket side by
side. uWSGI takes a held socket as ``socket = fd://N`` in the rendered ini (its own
syntax: the entry keeps its protocol, no name matching); nginx through its
``NGINX="N;M;"`` variable, matching each inherited socket to a ``listen`` by address.

What cannot be held (abstract unix sockets, ``reuseport``, unix ``listen`` in nginx)
is left to the program, and :func:`unholdable` names it for ``fnud check``.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from supervisor.common.ports import Address, parse_nginx_listen, parse_uwsgi_socket
from supervisor.uwsgi import options
from supervisor.uwsgi.ini import UwsgiIni

#: uWSGI options naming a listening socket fnud can hold (the protocol stays the option's)
DEFAULT_BACKLOG = 100  # uWSGI's default `listen`


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
        address = parse_uwsgi_socket(value)
        if address is not None:
            out.append(Spec(where, opt.line, value, address))
        else:
            out.append(Spec(where, opt.line, value, None, path=value, mode=mode, owner=owner))
    return out


def nginx_specs(listens: Iterable[tuple[str, int, tuple[str, ...]]]) -> list[Spec]:
    """``(file, line, args)`` of each ``listen``: the inet ones without ``reuseport``,
    once per address."""
    out: dict[str, Spec] = {}
    for file, line, args in listens:
        if not args or "reuseport" in args[1:]:
            continue
        address = parse_nginx_listen(args[0])
        if address is not None and str(address) not in out:
            out[str(address)] = Spec(f"{file}:{line}", line, args[0], address)
    return list(out.values())


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


def bind(spec: Spec, backlog: int = DEFAULT_BACKLOG) -> Held:
    """Bind and listen; the socket is inheritable (passed with ``pass_fds``)."""
    try:
        if spec.address is not None:
            sock = _bind_inet(spec.address, backlog)
        else:
            sock = _bind_unix(spec, backlog)
    except OSError as exc:
        raise SocketError(
            f"{spec.where}: cannot bind {spec.value}: {exc.strerror or exc}"
        ) from None
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


def _ids(owner: str) -> tuple[int, int]:
    user, _, group = owner.partition(":")
    entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    gid = entry.pw_gid
    if group:
        gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    return entry.pw_uid, gid


class Holder:
    """The sockets fnud holds for its lifetime, by the address they serve."""

    def __init__(self) -> None:
        self.held: dict[str, Held] = {}
        self.inherited: dict[str, socket.socket] = {}  # from systemd's fd store, by key

    def ensure(self, specs: Iterable[Spec], backlog: int = DEFAULT_BACKLOG) -> list[Held]:
        """Hold every spec (taking an inherited one, else binding); return them in order."""
        out = []
        for spec in specs:
            held = self.held.get(spec.key)
            if held is None:
                sock = self.inherited.pop(spec.key, None)
                held = Held(spec, sock) if sock is not None else bind(spec, backlog)
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


_SYS_PIDFD_GETFD = 438  # the same number on every Linux architecture (asm-generic)


def take(pid: int, fd: int) -> socket.socket:
    """A duplicate of process ``pid``'s descriptor ``fd`` (pidfd_getfd, Linux >= 5.6;
    needs ptrace rights over ``pid``: root, or our own child). ``os`` has no wrapper."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        new = int(libc.syscall(_SYS_PIDFD_GETFD, pidfd, fd, 0))
        if new < 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"pidfd_getfd({pid}, {fd}): {os.strerror(errno)}")
    finally:
        os.close(pidfd)
    return socket.socket(fileno=new)


def recover(holder: Holder, pid: int, fds: dict[str, int], specs: Iterable[Spec]) -> list[str]:
    """Take back the sockets a running master inherited from a previous daemon
    (``fds`` from its state file: {address: fd}). Returns what could not be taken."""
    by_key = {spec.key: spec for spec in specs}
    missed = []
    for key, fd in fds.items():
        spec = by_key.get(key)
        if spec is None or key in holder.held:
            continue
        try:
            sock = take(pid, fd)
        except OSError as exc:
            missed.append(f"{key}: {exc.strerror or exc}")
            continue
        if _key_of(sock) != key:
            sock.close()
            missed.append(f"{key}: fd {fd} of pid {pid} is another socket")
            continue
        holder.adopt(spec, sock)
    return missed


def _key_of(sock: socket.socket) -> str:
    name = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        return str(name)
    return str(Address(str(name[0]), int(name[1])))


def listening_fds(pid: int) -> dict[str, int]:
    """{address: fd} of the inet sockets process ``pid`` listens on."""
    import psutil

    out: dict[str, int] = {}
    try:
        conns = psutil.Process(pid).net_connections(kind="inet")
    except psutil.Error:
        return out
    for conn in conns:
        if conn.status == psutil.CONN_LISTEN and conn.fd >= 0 and conn.laddr:
            out[str(Address(str(conn.laddr.ip), int(conn.laddr.port)))] = conn.fd
    return out


def resync(holder: Holder, pid: int, specs: list[Spec]) -> list[str]:
    """After an nginx reload: take the listens it bound itself from its master, close
    the ones it dropped. Returns what could not be taken."""
    holder.keep_only(spec.key for spec in specs)
    missing = [spec for spec in specs if spec.key not in holder.held]
    if not missing:
        return []
    found = listening_fds(pid)
    fds = {spec.key: found[spec.key] for spec in missing if spec.key in found}
    missed = recover(holder, pid, fds, missing)
    return missed + [spec.key for spec in missing if spec.key not in fds]
