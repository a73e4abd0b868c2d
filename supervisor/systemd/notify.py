"""sd_notify: tell systemd about readiness, reloads and stops (Type=notify)."""

from __future__ import annotations

import array
import contextlib
import os
import socket
import time
import urllib.parse
from collections.abc import Mapping

SEND_WAIT = 0.5  # seconds a notification may wait for room in systemd's queue


class Notifier:
    """Sends datagrams to $NOTIFY_SOCKET; a no-op when it is not set."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        address = environ.get("NOTIFY_SOCKET", "")
        # '@' names an abstract socket: the leading byte is NUL on the wire
        self.address = "\0" + address[1:] if address.startswith("@") else address
        usec = environ.get("WATCHDOG_USEC", "")
        pid = environ.get("WATCHDOG_PID", "")
        mine = not pid or pid == str(os.getpid())
        self.watchdog_interval = int(usec) / 2e6 if usec.isdigit() and mine else 0.0

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, *fields: str, wait: float = SEND_WAIT) -> None:
        """One datagram. The loop must never hang on it: a receiver that does not read
        fills its queue (net.unix.max_dgram_qlen, often 10), so a send waits at most
        ``wait`` seconds and is then dropped."""
        if not self.address:
            return
        payload = "\n".join(fields).encode()
        with (
            contextlib.suppress(OSError),
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock,
        ):
            sock.settimeout(wait)
            sock.sendto(payload, self.address)

    def store_fds(self, named: Mapping[str, int]) -> None:
        """Keep these descriptors in systemd's fd store (FDSTORE=1, one name each): a
        restarted fnud gets them back through LISTEN_FDS/LISTEN_FDNAMES, so the stack
        starts again on the same listening sockets (connections wait, not refused)."""
        if not self.address:
            return
        for name, fd in named.items():
            payload = f"FDSTORE=1\nFDNAME={fdname(name)}".encode()
            with (
                contextlib.suppress(OSError),
                socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock,
            ):
                sock.settimeout(SEND_WAIT)
                sock.sendmsg(
                    [payload],
                    [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]).tobytes())],
                    0, self.address,
                )

    def ready(self, status: str = "") -> None:
        self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def reloading(self) -> None:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self) -> None:
        self.send("STOPPING=1")

    def status(self, text: str) -> None:
        self.send(f"STATUS={text}")

    def watchdog(self) -> None:
        self.send("WATCHDOG=1", wait=0.0)  # the next ping is never far: drop, never wait


def fdname(name: str) -> str:
    """systemd's FDNAME may not hold ':' (its list separator) nor control characters."""
    return urllib.parse.quote(name, safe="/.-_")


def inherited_fds(environ: Mapping[str, str]) -> dict[str, int]:
    """{name: fd} systemd passed to this process (LISTEN_FDS from the fd store)."""
    if environ.get("LISTEN_PID") != str(os.getpid()):
        return {}
    count = int(environ.get("LISTEN_FDS", "0") or 0)
    names = environ.get("LISTEN_FDNAMES", "").split(":")
    return {
        urllib.parse.unquote(names[i]) if i < len(names) else f"unknown.{i}": 3 + i
        for i in range(count)
    }
