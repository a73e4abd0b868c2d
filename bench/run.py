"""`make bench`: run every section once and print its numbers and ratios (no thresholds).

Usage: .venv/bin/python bench/run.py   (or `make bench`)
Environment: BENCH_SECONDS (10) load per throughput target and per steady window,
BENCH_ROUNDS (3) interleaved throughput rounds, BENCH_WARMUP (2), BENCH_CONNECTIONS (32),
BENCH_RELOADS (5) reloads per kind, BENCH_RELOAD_INTERVAL (2) seconds between them,
BENCH_SAVES (5) app edits in save_to_live, BENCH_LIGHT_CLIENTS (4) paced client threads
in save_to_live and fault_recovery, BENCH_IDLE (20) seconds idle in daemon_footprint,
BENCH_GEN_TIMED (2) timed reloads per stack and BENCH_GEN_RELOADS (10) reloads under wrk
in generations and the gunicorn sections, BENCH_SOAK (120) seconds of the soak,
BENCH_SECTIONS=throughput,reload,save_to_live,fault_recovery,daemon_footprint,generations,
gunicorn,gunicorn_pause,soak,fleet (default: all; a prefix is enough), BENCH_KEEP=1 keeps
the temp dirs.

Every process the bench starts runs in its own session and is stopped at the end, also
on Ctrl-C, SIGTERM or an error; anything still found under the bench's temp dirs is
killed and reported.
"""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from types import FrameType

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import wrk
from bench.context import Bench, Settings
from bench.procs import foreign_stack_processes
from bench.report import render_section
from bench.sections import selected
from bench.stacks import NGINX, REPO, UWSGI, BenchError


def _version(argv: list[str]) -> str:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"? ({exc})"
    text = (result.stdout + result.stderr).strip().splitlines()
    return text[0] if text else "?"


def header(settings: Settings) -> str:
    commit = _version(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = _version(["git", "-C", str(REPO), "status", "--porcelain", "--", "supervisor"])
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [
        f"fnud bench  {time.strftime('%Y-%m-%d %H:%M:%S')}  commit {commit}"
        + (" (supervisor/ has local changes)" if dirty not in ("", "?") else ""),
        f"machine: {os.cpu_count()} CPUs, load average {load}, "
        f"{foreign_stack_processes([])} nginx/uwsgi/gunicorn/pytest processes not started "
        "by the bench",
        f"{_version([NGINX, '-v'])}; uWSGI {_version([UWSGI, '--version'])}; "
        f"Python {platform.python_version()}; {_version([wrk.WRK, '-v'])}",
        f"settings: {settings.describe()}",
    ]
    return "\n".join(lines)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    settings = Settings.from_env()
    sections = selected(settings.sections)
    # Ctrl-C must reach the cleanup even when started with SIGINT ignored (`cmd &`)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    print(header(settings), "\n", flush=True)
    bench = Bench(settings)
    code = 0
    began = time.monotonic()
    try:
        for section in sections:
            name = section.__name__
            print(f"[running {name} ...]", flush=True)
            started = time.monotonic()
            try:
                tables = section(bench)
            except (BenchError, wrk.WrkError) as exc:
                code = 1
                print(f"section {name} failed: {exc}\n", flush=True)
                bench.problems.append(f"section {name} failed")
                continue
            print(render_section(name, section.__doc__ or "", tables), flush=True)
            print(f"[{name}: {time.monotonic() - started:.0f}s]\n", flush=True)
    except KeyboardInterrupt:
        code = 130
        print("\ninterrupted: stopping everything the bench started", flush=True)
    except Exception:
        code = 1
        traceback.print_exc()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        keep = bool(os.environ.get("BENCH_KEEP")) or code not in (0, 130)
        leftovers = bench.close(keep_dirs=keep)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    problems = bench.problems + leftovers
    if problems:
        print("odd things seen:")
        print("\n".join(f"  - {p}" for p in problems))
    if keep:
        print("temp dirs kept: " + " ".join(str(r) for r in bench.roots))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"total bench time {time.monotonic() - began:.0f}s; at the end: load average {load}, "
        f"{foreign_stack_processes([])} nginx/uwsgi/gunicorn/pytest processes not started "
        "by the bench",
        flush=True,
    )
    return code


if __name__ == "__main__":
    sys.exit(main())
