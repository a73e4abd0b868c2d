"""A stand-in for systemd's end of $NOTIFY_SOCKET: a bound AF_UNIX datagram socket that
records every sd_notify message with its sender's PID (SCM_CREDENTIALS, what
NotifyAccess=main checks)."""

from __future__ import annotations

import socket
import struct
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Message:
    fields: dict[str, str]
    pid: int  # the sender, from SCM_CREDENTIALS (what NotifyAccess=main checks)
    serving: bool | None = None  # for READY=1: did the stack URL answer right then?

    @property
    def kind(self) -> str:
        for key in ("READY", "RELOADING", "STOPPING", "FDSTORE"):
            if self.fields.get(key) == "1":
                return key
        return "STATUS" if "STATUS" in self.fields else "OTHER"


class Listener:
    """A bound AF_UNIX SOCK_DGRAM socket, path or abstract, that records every datagram."""

    def __init__(self, address: str, url: str) -> None:
        self.env_value = address
        self.url = url
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.messages: list[Message] = []

    def close(self) -> None:
        self.sock.close()
        if not self.env_value.startswith("@"):
            Path(self.env_value).unlink(missing_ok=True)

    def receive(self, timeout: float) -> Message | None:
        self.sock.settimeout(timeout)
        try:
            data, ancdata, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        except (TimeoutError, BlockingIOError):
            return None
        pid = 0
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("3i", payload[:12])[0]
        fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
        message = Message(fields, pid)
        if message.kind == "READY":
            # check at once, before anything else happens: READY=1 means "serving"
            message = Message(fields, pid, serving=answers(self.url))
        self.messages.append(message)
        return message

    def wait(self, kind: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> Message:
        """Read datagrams until one of ``kind``; fail on the deadline or if fnud exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self.receive(timeout=0.2)
            if message is not None and message.kind == kind:
                return message
            if message is None and proc.poll() is not None:
                raise AssertionError(f"fnud exited ({proc.returncode}) before {kind}=1")
        raise AssertionError(f"no {kind}=1 within {timeout}s; got {self.kinds()}")

    def drain(self) -> None:
        while self.receive(timeout=0.0) is not None:
            pass

    def kinds(self) -> list[str]:
        return [m.kind for m in self.messages]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5.0) as response:
            return bool(response.status == 200)
    except OSError:
        return False
