"""Run wrk against 127.0.0.1 and parse its report (``--latency`` percentiles included).

Latency figures are wrk's: they cover completed requests only (a request that ends in a
socket error has no latency) and are not corrected for coordinated omission.
"""

from __future__ import annotations

import re
import signal
import subprocess
from dataclasses import dataclass
from urllib.parse import urlsplit

from bench.procs import Child, Processes

WRK = "wrk"
UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_TIME = r"([\d.]+)(us|ms|s|m|h)"


class WrkError(Exception):
    pass


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50: float  # seconds
    p75: float
    p90: float
    p99: float
    max: float
    non_2xx: int  # wrk counts HTTP status >= 400 ("Non-2xx or 3xx responses")
    connect: int
    read: int
    write: int
    timeout: int

    @property
    def socket_errors(self) -> int:
        return self.connect + self.read + self.write + self.timeout

    @property
    def failed(self) -> int:
        return self.non_2xx + self.socket_errors

    def errors_text(self) -> str:
        if not self.socket_errors:
            return "0"
        parts = [f"{name} {getattr(self, name)}" for name in ("connect", "read", "write",
                                                               "timeout") if getattr(self, name)]
        return ", ".join(parts)


def _seconds(value: str, unit: str) -> float:
    return float(value) * UNITS[unit]


def parse(output: str) -> WrkResult:
    """Parse wrk's text report; raise WrkError if it is not one."""
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h)", output)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if total is None or rps is None:
        raise WrkError(f"unexpected wrk output:\n{output}")
    percentiles: dict[str, float] = {}
    for pct, value, unit in re.findall(rf"^\s+(50|75|90|99)%\s+{_TIME}", output, re.M):
        percentiles[pct] = _seconds(value, unit)
    latency = re.search(rf"^\s+Latency\s+{_TIME}\s+{_TIME}\s+{_TIME}", output, re.M)
    maximum = _seconds(latency.group(5), latency.group(6)) if latency else 0.0
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    connect, read, write, timeout = (int(x) for x in errors.groups()) if errors else (0,) * 4
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return WrkResult(
        requests=int(total.group(1)),
        seconds=_seconds(total.group(2), total.group(3)),
        rps=float(rps.group(1)),
        p50=percentiles.get("50", 0.0),
        p75=percentiles.get("75", 0.0),
        p90=percentiles.get("90", 0.0),
        p99=percentiles.get("99", 0.0),
        max=maximum,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        connect=connect, read=read, write=write, timeout=timeout,
    )


def argv(url: str, seconds: float, threads: int, connections: int, timeout: float) -> list[str]:
    if urlsplit(url).hostname != "127.0.0.1":
        raise WrkError(f"the bench loads 127.0.0.1 only, not {url}")
    return [
        WRK, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
        f"--timeout={max(1, round(timeout))}s", "--latency", url,
    ]


class WrkRun:
    """A wrk started in the background: ``finish`` ends it early (SIGINT) and parses it.

    wrk prints its full report when interrupted with SIGINT, over the time it really ran.
    ``max_seconds`` bounds the run even if nobody calls ``finish``.
    """

    def __init__(
        self, procs: Processes, url: str, max_seconds: float, threads: int, connections: int,
        timeout: float = 10.0,
    ) -> None:
        self.procs = procs
        self.max_seconds = max_seconds
        self.child: Child = procs.spawn(
            "wrk", argv(url, max_seconds, threads, connections, timeout),
            stdout=subprocess.PIPE, stop_signal=signal.SIGINT,
        )

    def wait(self) -> WrkResult:
        """Let wrk run to its own end (``max_seconds``)."""
        return self._collect(timeout=self.max_seconds + 30)

    def finish(self) -> WrkResult:
        """Stop wrk now and return what it measured so far."""
        if self.child.proc.poll() is None:
            self.child.proc.send_signal(signal.SIGINT)
        return self._collect(timeout=30)

    def _collect(self, timeout: float) -> WrkResult:
        try:
            out, _ = self.child.proc.communicate(timeout=timeout)
        finally:
            self.procs.stop(self.child, timeout=2)
        text = out.decode(errors="replace")
        if self.child.proc.returncode not in (0, None):
            raise WrkError(f"wrk exited {self.child.proc.returncode}:\n{text}")
        return parse(text)


def run(
    procs: Processes, url: str, seconds: float, threads: int, connections: int,
    timeout: float = 10.0,
) -> WrkResult:
    """wrk for ``seconds`` against ``url``; blocks until it is done."""
    return WrkRun(procs, url, seconds, threads, connections, timeout).wait()
