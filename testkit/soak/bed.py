"""The soak's stack: the real nginx and uWSGI under fnud, releases behind a symlink, the
log dir on a small tmpfs of its own (when root: a disk that can fill), and what the
soak reads of it (which release serves, the daemon's descriptors and memory)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import psutil

from testkit.stackdir import EXAMPLE_APP, StackDir, make_stack_dir, wait_for

LOG_TMPFS = "4m"
SETTLE = 1.0
TOML = """
[watch]
enabled = true
"""

CRASHING = '''
import uwsgi as _uwsgi
if isinstance(getattr(_uwsgi, "version", None), bytes):  # the real uWSGI, not the preflight
    import os as _os
    _os._exit(3)
'''


class Bed:
    def __init__(self) -> None:
        self.stack: StackDir = make_stack_dir(settle=SETTLE, extra_toml=TOML)
        self.root = self.stack.root
        self.releases = self.root / "releases"
        self.current = self.root / "current"
        self.count = 0
        ini = self.stack.ini.read_text().replace("chdir = %dapp", "chdir = %dcurrent")
        self.stack.ini.write_text(ini)
        self.tmpfs = False

    # -- releases --------------------------------------------------------------------

    def release(self, kind: str = "good") -> tuple[Path, str]:
        """A new release directory of ``kind`` (good, broken, unhealthy, crashing) and
        the text its / answers."""
        self.count += 1
        text = f"release {self.count} ({kind})"
        directory = self.releases / f"r{self.count}"
        directory.mkdir(parents=True)
        source = EXAMPLE_APP.read_text().replace('"Hello from fnud"', repr(text))
        if kind == "broken":
            source += "\ndef broken(:\n"
        elif kind == "unhealthy":
            source = source.replace('return jsonify(status="ok", pid=os.getpid())',
                                    'return "not ok", 500')
        elif kind == "crashing":
            anchor = "from flask import Flask, jsonify, request\n"
            source = source.replace(anchor, anchor + CRASHING)
        (directory / "app.py").write_text(source)
        return directory, text

    def point(self, directory: Path) -> None:
        """current -> directory, atomically (as a deploy tool does)."""
        tmp = self.root / "current.tmp"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(directory.relative_to(self.root))
        os.replace(tmp, self.current)

    def pointed(self) -> Path:
        return (self.root / os.readlink(self.current)).resolve()

    @staticmethod
    def text_of(directory: Path) -> str:
        found = re.search(r"GREETING = '([^']*)'", (directory / "app.py").read_text())
        assert found, directory
        return found.group(1)

    def edit(self, text: str) -> None:
        """A save in the serving release, in place (what [watch] reloads)."""
        app = self.pointed() / "app.py"
        source = app.read_text()
        app.write_text(re.sub(r"GREETING = '[^']*'", f"GREETING = {text!r}", source))

    # -- the stack -------------------------------------------------------------------

    def start(self) -> None:
        first, _ = self.release()
        self.point(first)
        shutil.rmtree(self.root / "app", ignore_errors=True)
        if os.geteuid() == 0 and shutil.which("mount"):
            (self.root / "log").mkdir(exist_ok=True)
            mounted = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={LOG_TMPFS},mode=0755", "fnud-soak-log",
                 str(self.root / "log")], capture_output=True, text=True,
            )
            self.tmpfs = mounted.returncode == 0
        self.stack.start()

    def close(self) -> None:
        self.stack.fnud("stop", timeout=120)
        if self.tmpfs:
            subprocess.run(["umount", "-l", str(self.root / "log")], capture_output=True)
            self.tmpfs = False

    def status(self) -> dict[str, Any]:
        result = self.stack.fnud("status", "--json", timeout=60)
        try:
            return dict(json.loads(result.stdout))
        except ValueError:
            return {}

    def daemon(self) -> int:
        return int(self.status()["daemon"]["pid"])

    def quiet(self, timeout: float = 90.0) -> dict[str, Any]:
        """Status once nothing moves: running, no operation, every program RUNNING, no
        generation kept warm, no save pending."""
        def still() -> dict[str, Any] | None:
            state = self.status()
            daemon = state.get("daemon") or {}
            programs = state.get("programs") or {}
            settled = (
                daemon.get("phase") == "running" and state.get("operation") == "idle"
                and programs and all(p["state"] == "RUNNING" for p in programs.values())
                and not (state.get("generation") or {}).get("previous")
                and not (state.get("watch") or {}).get("pending")
                and (state.get("preflight") or {}).get("warm")  # started after a restart
            )
            return state if settled else None

        return wait_for(still, timeout=timeout, interval=0.2, message="the stack to be quiet")  # type: ignore[return-value]

    def footprint(self, pid: int) -> tuple[int, int]:
        """(open descriptors, RSS) of the daemon."""
        return len(os.listdir(f"/proc/{pid}/fd")), int(psutil.Process(pid).memory_info().rss)

    def app_masters(self) -> list[psutil.Process]:
        """Every uWSGI master of this stack (one per generation alive)."""
        prefix = str(self.stack.run / "uwsgi-")
        out = []
        for proc in psutil.process_iter(["cmdline", "ppid"]):
            cmdline = " ".join(proc.info["cmdline"] or [])
            with contextlib.suppress(psutil.Error):
                parent = proc.parent()
                if prefix in cmdline and parent is not None and prefix not in " ".join(
                    parent.cmdline()
                ):
                    out.append(proc)
        return out
