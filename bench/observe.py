"""What the generations section watches while a stack reloads: the CLI's progress lines
with their arrival times, and the stack's memory sampled in the background."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import psutil

from bench.stacks import FnudStack, clean_env

STACK_PROGRAMS = ("uwsgi", "nginx")


@dataclass(frozen=True)
class Timed:
    """One CLI call: its wall time, exit code and every output line with the seconds
    since the call began at which the bench read it."""

    began: float  # monotonic
    seconds: float
    code: int
    lines: list[tuple[float, str]]

    @property
    def ended(self) -> float:
        return self.began + self.seconds

    def at(self, *fragments: str) -> float | None:
        """Seconds from the call to the first line containing any of ``fragments``."""
        return next((t for t, text in self.lines if any(f in text for f in fragments)), None)

    def last(self) -> str:
        return self.lines[-1][1] if self.lines else ""


def timed_cli(stack: FnudStack, *args: str, timeout: float = 300.0) -> Timed:
    """``fnud ARGS`` on ``stack``, its output read line by line as it comes."""
    began = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "supervisor", "-c", str(stack.files.toml), *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=clean_env(),
        stdin=subprocess.DEVNULL,
    )
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    lines: list[tuple[float, str]] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip():
                lines.append((time.monotonic() - began, line.strip()))
        code = proc.wait()
    finally:
        timer.cancel()
    return Timed(began, time.monotonic() - began, code, lines)


def stack_processes(daemon_pid: int) -> list[psutil.Process]:
    """The daemon's uWSGI and nginx descendants: every generation's master and workers,
    nginx's master and workers (the daemon itself and its preflight interpreters not)."""
    try:
        children = psutil.Process(daemon_pid).children(recursive=True)
    except psutil.Error:
        return []
    out = []
    for proc in children:
        try:
            if proc.name() in STACK_PROGRAMS and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except psutil.Error:
            continue
    return out


@dataclass
class Sample:
    at: float  # monotonic
    rss: int  # bytes, summed over the stack's processes
    uwsgi: int  # uWSGI processes (masters + workers) in the sample


@dataclass
class MemorySampler:
    """Samples the stack's summed RSS every ``interval`` seconds until ``stop``."""

    daemon_pid: int
    interval: float = 0.05
    samples: list[Sample] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-rss", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = uwsgi = 0
            for proc in stack_processes(self.daemon_pid):
                try:
                    rss += proc.memory_info().rss
                    uwsgi += proc.name() == "uwsgi"
                except psutil.Error:
                    continue
            self.samples.append(Sample(time.monotonic(), rss, uwsgi))
            self._stop.wait(self.interval)

    def start(self) -> MemorySampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def between(self, start: float, end: float) -> list[Sample]:
        return [s for s in self.samples if start <= s.at <= end and s.rss]
