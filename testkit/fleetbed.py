"""The fleet test bed (deploy/testbed/fleet) driven from tests and bench: up, playbooks,
what each host serves, down, and what a fleet could leave behind."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
FLEET = ROOT / "deploy" / "testbed" / "fleet"
EXAMPLE_APP = ROOT / "example" / "app.py"
PLAYBOOK_TIMEOUT = 600.0


def unavailable() -> str:
    """Why the fleet cannot be made here (one line), or ''."""
    if os.geteuid() != 0:
        return "fleet tests need root (network namespaces, veth pairs, sshd)"
    if not Path("/usr/sbin/sshd").exists():
        return "openssh-server is not installed (make test installs it)"
    if not (Path(sys.executable).parent / "ansible-playbook").exists():
        return "ansible-core is not installed in the venv (make test installs it)"
    if not shutil.which("ip"):
        return "iproute2's ip is missing"
    sys.path.insert(0, str(FLEET.parent))
    try:
        import netns  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    return str(netns.can_make_namespaces())


def fleet_command(name: str, state: Path, *args: str) -> list[str]:
    return [sys.executable, str(FLEET), "--name", name, "--dir", str(state), *args]


@dataclass
class Fleet:
    name: str
    state: Path
    balancer: str = ""  # http://ADDR:PORT/
    hosts: dict[str, str] | None = None  # namespace -> http://ADDR:PORT/
    inventory: Path | None = None
    up_output: str = ""

    @classmethod
    def create(cls, hosts: int, name: str | None = None, settle: float | None = None) -> Fleet:
        """``fleet up``; on failure the fleet is taken down again and AssertionError says why."""
        state = Path(tempfile.mkdtemp(prefix="fnud-fleet-"))
        fleet = cls(name or f"ft{os.getpid() % 100000}", state)
        extra = [] if settle is None else ["--settle", str(settle)]
        result = fleet.run("up", "--hosts", str(hosts), *extra, timeout=1200)
        fleet.up_output = result.stdout + result.stderr
        if result.returncode != 0:
            fleet.down()
            raise AssertionError(f"fleet up failed: {fleet.up_output[-3000:]}")
        fleet.hosts = {}
        for line in result.stdout.splitlines():
            if line.startswith("balancer: "):
                fleet.balancer = line.split()[1]
            elif line.startswith("host "):
                _, host, url = line.split()
                fleet.hosts[host] = url
            elif line.startswith("inventory: "):
                fleet.inventory = Path(line.split(maxsplit=1)[1])
        return fleet

    def run(
        self, *args: str, timeout: float = PLAYBOOK_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            fleet_command(self.name, self.state, *args), capture_output=True, text=True,
            timeout=timeout, stdin=subprocess.DEVNULL,
        )

    def playbook(self, book: str, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run("playbook", book, *args)

    def down(self, keep: bool = False) -> subprocess.CompletedProcess[str]:
        """``fleet down``; ``keep`` leaves the state dir (logs of every host) in place."""
        return self.run("down", *(["--keep"] if keep else []), timeout=120)

    @property
    def addresses(self) -> tuple[str, ...]:
        urls = [self.balancer, *(self.hosts or {}).values()]
        return tuple(str(urlsplit(url).hostname) for url in urls if url)

    def host_root(self, host: str) -> Path:
        return self.state / "hosts" / host / "srv"

    def releases(self, host: str) -> list[str]:
        return sorted(p.name for p in (self.host_root(host) / "releases").iterdir())

    def current(self, host: str) -> str:
        return os.readlink(self.host_root(host) / "current")

    def serves(self, host: str, path: str = "/") -> str:
        return get((self.hosts or {})[host], path)[1]

    def namespace_pids(self, host: str) -> set[int]:
        out = subprocess.run(["ip", "netns", "pids", host], capture_output=True, text=True)
        return {int(pid) for pid in out.stdout.split()}

    def leftovers(self) -> list[str]:
        """Namespaces, links and processes of this fleet that still exist."""
        found = []
        netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        found += [f"netns {n}" for n in netns.split() if n.startswith(f"{self.name}-")]
        links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
        for line in links.splitlines():
            link = line.split(":")[1].strip().split("@")[0]
            if link.startswith((f"{self.name}br", f"{self.name}v")):
                found.append(f"link {link}")
        import psutil

        for proc in psutil.process_iter(["cmdline"]):
            if any(str(self.state) in part for part in proc.info["cmdline"] or []):
                found.append(f"process {proc.pid} {' '.join(proc.info['cmdline'])[:120]}")
        return found


def play_recap(output: str) -> dict[str, dict[str, int]]:
    """The last PLAY RECAP of an ansible-playbook run: host -> {"ok": N, "changed": N, ...}."""
    if "PLAY RECAP" not in output:
        return {}
    recap: dict[str, dict[str, int]] = {}
    for line in output[output.rindex("PLAY RECAP"):].splitlines()[1:]:
        host, sep, counts = line.partition(" : ")
        if sep and host.strip():
            recap[host.strip()] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counts)}
    return recap


def changed_tasks(output: str) -> list[str]:
    """'TASK NAME: HOST' for every task that reported a change in an ansible-playbook run."""
    found, task = [], ""
    for line in output.splitlines():
        header = re.match(r"(?:TASK|RUNNING HANDLER) \[(.*)\] \*+$", line)
        if header:
            task = header.group(1)
        changed = re.match(r"changed: \[([^\]]+)\]", line)
        if changed:
            found.append(f"{task}: {changed.group(1)}")
    return found


def get(url: str, path: str = "/", timeout: float = 10.0) -> tuple[int, str]:
    base = url.rstrip("/")
    try:
        with urllib.request.urlopen(base + path, timeout=timeout) as response:
            return response.status, response.read().decode(errors="replace")
    except OSError as exc:
        return 0, type(exc).__name__


def make_release(parent: Path, name: str, greeting: str, mutate: str = "") -> Path:
    """A release directory laid out like example/: the example app saying ``greeting``;
    ``mutate`` = "syntax" (a syntax error) or "smoke" (its /health answers 500)."""
    release = parent / name
    release.mkdir(parents=True)
    source = EXAMPLE_APP.read_text().replace(
        'GREETING = "Hello from fnud"', f'GREETING = "{greeting}"'
    )
    if mutate == "syntax":
        source += "\ndef broken(:\n"
    elif mutate == "smoke":
        source = source.replace(
            'return jsonify(status="ok", pid=os.getpid())', 'return jsonify(status="bad"), 500'
        )
    (release / "app.py").write_text(source)
    return release
