"""Listen addresses: parsed from fnud.toml, the app server's config and nginx; is one
free? (probed by binding, with the holder named where visible)."""

from __future__ import annotations

import contextlib
import errno
import re
import socket
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


_LISTEN_RE = re.compile(
    r"^(?:\[(?P<v6>[0-9a-fA-F:]+)\]|(?P<host>[A-Za-z0-9.-]+)):(?P<port>\d{1,5})$"
)
LOOPBACK_HOSTS = ("localhost", "[::1]")


def parse_listen(text: str) -> Address | None:
    """``HOST:PORT`` or ``[V6]:PORT`` with a port in 1-65535; None for anything else."""
    match = _LISTEN_RE.match(text)
    if not match or not 0 < int(match.group("port")) < 65536:
        return None
    return Address(match.group("v6") or match.group("host"), int(match.group("port")))


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, [::1] or localhost (a name, not resolved: no OS calls here)."""
    return host in LOOPBACK_HOSTS or re.fullmatch(r"127(\.\d{1,3}){3}", host) is not None


def parse_nginx_listen(arg: str) -> Address | None:
    """``listen`` forms: 8080, 127.0.0.1:8080, *:80, [::1]:80, localhost:80; unix: -> None."""
    if arg.startswith("unix:"):
        return None
    if arg.startswith("["):
        host, _, port = arg[1:].partition("]:")
        return Address(host, int(port)) if port.isdigit() else None
    if arg.isdigit():
        return Address("0.0.0.0", int(arg))
    host, _, port = arg.rpartition(":")
    if not port.isdigit():
        return Address(arg, 80) if not host else None
    return Address("0.0.0.0" if host in ("*", "") else host, int(port))


def parse_host_port(value: str) -> Address | None:
    """An app server's TCP socket: 127.0.0.1:3031, :3031, [::]:3031; paths and @abstract
    -> None."""
    if value.startswith(("/", "@", ".")) or ":" not in value:
        return None
    host, _, port = value.rpartition(":")
    host = host.strip("[]")
    if not port.isdigit():
        return None
    return Address(host or "0.0.0.0", int(port))


#: Debian's nginx package: its unit, and the pid file that unit's nginx writes
NGINX_UNIT = Path("/lib/systemd/system/nginx.service")
NGINX_PIDFILE = Path("/run/nginx.pid")


def service_of(pid: int) -> str:
    """The systemd service a process belongs to ('nginx.service'), '' when none is
    known: its cgroup says so under systemd; without systemd running, Debian's nginx is
    recognised by the pid file its unit names."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
            unit = line.rpartition("/")[2]
            if unit.endswith(".service") and "/system.slice/" in line:
                return unit
    with contextlib.suppress(psutil.Error, OSError, ValueError):
        master = int(NGINX_PIDFILE.read_text().strip())
        if NGINX_UNIT.exists() and master in (pid, psutil.Process(pid).ppid()):
            return NGINX_UNIT.name
    return ""


@dataclass(frozen=True)
class Holder:
    """Who listens on a port: a process, and the service it belongs to."""

    pid: int = 0
    name: str = ""
    service: str = ""

    def __str__(self) -> str:
        if not self.pid:
            return "another process"
        of = f" of {self.service}" if self.service else ""
        return f"pid {self.pid} ({self.name}{of})"

    @property
    def how_to_free(self) -> str:
        if self.service:
            unit = self.service.removesuffix(".service")
            return f"stop it and keep it from starting at boot: systemctl disable --now {unit}"
        return "stop that process or choose another port"


def holder(port: int) -> Holder:
    """The process listening on ``port`` (a worker's master rather than the worker),
    when we may see it."""
    with contextlib.suppress(psutil.Error, OSError):
        for conn in psutil.net_connections(kind="inet"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                if not conn.pid:
                    return Holder()
                with contextlib.suppress(psutil.Error):
                    proc = _master(psutil.Process(conn.pid))
                    return Holder(proc.pid, proc.name(), service_of(proc.pid))
    return Holder()


def _master(proc: psutil.Process) -> psutil.Process:
    """The master of a worker that shares its listening socket (same program)."""
    parent = proc.parent()
    while parent is not None and parent.pid > 1 and parent.name() == proc.name():
        proc, parent = parent, parent.parent()
    return proc


IN_USE = "address already in use"


def in_use(address: Address, name_holder: bool = True) -> str | None:
    """None if we could bind ``address`` now; else why not (``name_holder``: say who
    holds it, a scan of every process's sockets; else just IN_USE)."""
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    try:
        infos = socket.getaddrinfo(address.host, address.port, family, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return f"cannot resolve {address.host}: {exc.strerror}"
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(infos[0][4])
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"{IN_USE} by {holder(address.port)}" if name_holder else IN_USE
            if exc.errno == errno.EACCES:
                return "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
            return exc.strerror or str(exc)
    return None
