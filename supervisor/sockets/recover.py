"""Taking held sockets back from running masters (after a daemon restart, after an
nginx reload that bound new listens itself): pidfd_getfd, matched by address."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable

from supervisor.common.ports import Address
from supervisor.sockets.held import Holder, Spec

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


def listening_fds(pid: int, paths: frozenset[str] = frozenset()) -> dict[str, int]:
    """{address: fd} of the inet sockets process ``pid`` listens on, and of its unix
    sockets bound to one of ``paths``: the numbers as that process has them."""
    import psutil

    out: dict[str, int] = {}
    try:
        conns = psutil.Process(pid).net_connections(kind="inet" if not paths else "all")
    except psutil.Error:
        return out
    for conn in conns:
        if conn.fd < 0 or not conn.laddr:
            continue
        if isinstance(conn.laddr, str):
            if conn.laddr in paths:
                out[conn.laddr] = conn.fd
        elif conn.status == psutil.CONN_LISTEN:
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
