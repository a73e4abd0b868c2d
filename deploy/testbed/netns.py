"""Network namespaces, veth pairs, one bridge and one sshd per namespace.

Everything made is first written to the fleet's state file (``Ledger``), so that
``teardown`` removes it even after a crash halfway; teardown also finds what carries the
fleet's name, and running it twice is fine. No address is ever added to the root
namespace: the bridge has none, a route sends the fleet's /24 to it, and each namespace
routes the root namespace's own source address back over its veth. The namespaces have
no default route: nothing in them reaches past this machine.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import socket
import subprocess
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import psutil

SSHD = "/usr/sbin/sshd"
SFTP_SERVER = "/usr/lib/openssh/sftp-server"


class FleetError(Exception):
    """One line for the user."""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["ip", *args], capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    if check and result.returncode != 0:
        raise FleetError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result


def can_make_namespaces() -> str:
    """'' when this process may create network namespaces, else why not (one line)."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, veth pairs, sshd)"
    probe = f"fnudprobe{os.getpid()}"
    made = ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"cannot create a network namespace (no CAP_NET_ADMIN?): {made.stderr.strip()}"
    ip("netns", "del", probe, check=False)
    return ""


@dataclass(frozen=True)
class Host:
    name: str  # the network namespace, the inventory host name
    address: str
    veth: str  # the root namespace's end


class Ledger:
    """fleet.json: what this fleet made, written before each step."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, list[str]] = {"namespaces": [], "links": [], "routes": []}
        if path.exists():
            with contextlib.suppress(ValueError, OSError):
                self.data.update(json.loads(path.read_text()))

    def note(self, kind: str, value: str) -> None:
        if value not in self.data.setdefault(kind, []):
            self.data[kind].append(value)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.data, indent=1))
            os.replace(tmp, self.path)


def pick_subnet(name: str) -> ipaddress.IPv4Network:
    """A /24 in 10.251.0.0/16 that no route or address of this machine touches yet."""
    used = []
    for route in json.loads(ip("-j", "route", "show", "table", "all").stdout or "[]"):
        dst = route.get("dst", "default")
        with contextlib.suppress(ValueError):
            if dst != "default" and ":" not in dst:
                used.append(ipaddress.IPv4Network(dst, strict=False))
    start = zlib.crc32(name.encode()) % 240
    for offset in range(240):
        net = ipaddress.IPv4Network(f"10.251.{(start + offset) % 240 + 10}.0/24")
        if not any(net.overlaps(other) for other in used):
            return net
    raise FleetError("no free /24 left in 10.251.0.0/16")


def build_network(
    name: str, names: list[str], subnet: ipaddress.IPv4Network, ledger: Ledger
) -> list[Host]:
    """A bridge in the root namespace, one namespace + veth per name; addresses .10 up."""
    bridge = f"{name}br"
    ledger.note("links", bridge)
    ip("link", "add", bridge, "type", "bridge")
    ip("link", "set", bridge, "up")
    ledger.note("routes", str(subnet))
    ip("route", "add", str(subnet), "dev", bridge)
    src = json.loads(ip("-j", "route", "get", str(subnet[10])).stdout)[0].get("prefsrc")
    if not src:
        raise FleetError("the root namespace has no address to reach the fleet from")
    hosts = []
    for index, ns in enumerate(names):
        host = Host(ns, str(subnet[10 + index]), f"{name}v{index}")
        _add_namespace(host, bridge, subnet.prefixlen, src, ledger)
        hosts.append(host)
    return hosts


def _add_namespace(host: Host, bridge: str, prefixlen: int, src: str, ledger: Ledger) -> None:
    ledger.note("namespaces", host.name)
    ip("netns", "add", host.name)
    ledger.note("links", host.veth)
    peer = f"{host.veth}p"
    ip("link", "add", host.veth, "type", "veth", "peer", "name", peer)
    ip("link", "set", host.veth, "master", bridge, "up")
    ip("link", "set", peer, "netns", host.name)
    ip("-n", host.name, "link", "set", peer, "name", "eth0")
    ip("-n", host.name, "addr", "add", f"{host.address}/{prefixlen}", "dev", "eth0")
    ip("-n", host.name, "link", "set", "eth0", "up")
    ip("-n", host.name, "link", "set", "lo", "up")
    ip("-n", host.name, "route", "add", f"{src}/32", "dev", "eth0")


SSHD_CONFIG = """\
# sshd of fleet host {name}: its own address, host key, pid file and authorized keys
ListenAddress {address}:22
HostKey {dir}/ssh_host_ed25519_key
PidFile {dir}/sshd.pid
AuthorizedKeysFile {authorized}
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
AcceptEnv LANG LC_*
Subsystem sftp {sftp}
"""


def start_sshd(host: Host, home: Path, authorized: Path) -> Path:
    """sshd inside the host's namespace; returns its host public key file."""
    ssh_dir = home / "ssh"
    ssh_dir.mkdir(parents=True, exist_ok=True)
    key = ssh_dir / "ssh_host_ed25519_key"
    if not key.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", host.name, "-f", str(key)],
            check=True, stdin=subprocess.DEVNULL,
        )
    config = ssh_dir / "sshd_config"
    config.write_text(SSHD_CONFIG.format(
        name=host.name, address=host.address, dir=ssh_dir, authorized=authorized,
        sftp=SFTP_SERVER,
    ))
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation dir
    started = subprocess.run(
        ["ip", "netns", "exec", host.name, SSHD, "-f", str(config),
         "-E", str(ssh_dir / "sshd.log")],
        capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )
    if started.returncode != 0:
        raise FleetError(f"sshd in {host.name}: {started.stderr.strip() or 'failed'}")
    return key.with_suffix(".pub")


def wait_port(address: str, port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((address, port), timeout=1.0):
                return
        except OSError as exc:
            if time.monotonic() > deadline:
                raise FleetError(f"{address}:{port} does not answer: {exc}") from None
            time.sleep(0.1)


def namespace_pids(ns: str) -> list[int]:
    result = ip("netns", "pids", ns, check=False)
    return [int(p) for p in result.stdout.split()] if result.returncode == 0 else []


def kill_namespace(ns: str, timeout: float = 10.0) -> None:
    """SIGKILL every process in the namespace until none is left (they may fork)."""
    deadline = time.monotonic() + timeout
    while pids := namespace_pids(ns):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        procs = []
        for pid in pids:
            with contextlib.suppress(psutil.NoSuchProcess):
                procs.append(psutil.Process(pid))
        psutil.wait_procs(procs, timeout=2.0)
        if time.monotonic() > deadline:
            raise FleetError(f"processes survive in {ns}: {namespace_pids(ns)}")


def processes_naming(path: Path) -> list[psutil.Process]:
    """Processes in any namespace whose command line names ``path`` (ssh mux clients,
    ansible workers): the fleet's leftovers outside its namespaces."""
    needle = str(path)
    found = []
    me = psutil.Process()
    spared = {me.pid} | {p.pid for p in me.parents()}  # `fleet down` and who ran it
    for proc in psutil.process_iter(["cmdline"]):
        if proc.pid in spared:
            continue
        cmdline = proc.info["cmdline"] or []
        if any(needle in part for part in cmdline):
            found.append(proc)
    return found


def teardown(name: str, ledger: Ledger, state_dir: Path) -> list[str]:
    """Remove every namespace, link, route and process of the fleet; what was removed."""
    live = set(ip("netns", "list", check=False).stdout.split())
    namespaces = set(ledger.data.get("namespaces", [])) | {
        ns for ns in live if ns.startswith(f"{name}-")
    }
    removed = []
    for ns in sorted(namespaces & live):
        kill_namespace(ns)
        ip("netns", "del", ns, check=False)
        removed.append(f"netns {ns}")
    for proc in processes_naming(state_dir):
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
            removed.append(f"process {proc.pid}")
    links = set(ledger.data.get("links", [])) | _links_named(name)
    for link in sorted(links):
        if ip("link", "show", link, check=False).returncode == 0:
            ip("link", "del", link, check=False)
            removed.append(f"link {link}")
    for route in ledger.data.get("routes", []):
        ip("route", "del", route, check=False)  # gone with the bridge already, normally
    return removed


def _links_named(name: str) -> set[str]:
    out = ip("-o", "link", "show", check=False).stdout
    links = set()
    for line in out.splitlines():
        parts = line.split(":")
        if len(parts) > 1:
            link = parts[1].strip().split("@")[0]
            if link == f"{name}br" or (link.startswith(f"{name}v") and link[len(name) + 1:]
                                       .rstrip("p").isdigit()):
                links.add(link)
    return links
