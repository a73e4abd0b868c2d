"""What every section gets: the settings, and stacks started on demand and shared.

Sections ask for the fnud stack, the hand-started stack or ``flask run``; each is
started the first time it is asked for and reused by later sections. A section that
needs a private stack (e.g. one it will break on purpose) calls ``new_files``, or
``private_fnud`` for a started fnud stack that ``close`` stops if the section did not.
``close`` stops everything and makes sure nothing is left under the bench's temp dirs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.procs import Processes, kill_under
from bench.stacks import BenchError, FlaskDev, FnudStack, HandStack, StackFiles
from bench.wrk import WrkResult, WrkRun
from bench.wrk import run as run_wrk


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    return float(value) if value else default


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


@dataclass(frozen=True)
class Settings:
    seconds: float = 10.0  # BENCH_SECONDS: one measured wrk window
    warmup: float = 2.0  # BENCH_WARMUP: unmeasured wrk run before a throughput window
    rounds: int = 3  # BENCH_ROUNDS: throughput windows are split into interleaved rounds
    wrk_threads: int = 2
    connections: int = 32  # BENCH_CONNECTIONS
    reloads: int = 5  # BENCH_RELOADS: reloads per kind in the reload section
    interval: float = 2.0  # BENCH_RELOAD_INTERVAL: seconds between reload starts
    processes: int = 4
    threads: int = 2
    saves: int = 5  # BENCH_SAVES: edits of the app in save_to_live
    idle: float = 20.0  # BENCH_IDLE: idle window of daemon_footprint
    light_clients: int = 4  # BENCH_LIGHT_CLIENTS: paced client threads (save, fault sections)
    gen_timed: int = 2  # BENCH_GEN_TIMED: timed reloads per stack in generations
    gen_reloads: int = 10  # BENCH_GEN_RELOADS: generation reloads under wrk in generations
    sections: tuple[str, ...] = ()  # BENCH_SECTIONS=throughput,reload (empty: all)

    @classmethod
    def from_env(cls) -> Settings:
        names = os.environ.get("BENCH_SECTIONS", "")
        return cls(
            seconds=_env_float("BENCH_SECONDS", cls.seconds),
            warmup=_env_float("BENCH_WARMUP", cls.warmup),
            rounds=max(1, _env_int("BENCH_ROUNDS", cls.rounds)),
            connections=_env_int("BENCH_CONNECTIONS", cls.connections),
            reloads=_env_int("BENCH_RELOADS", cls.reloads),
            interval=_env_float("BENCH_RELOAD_INTERVAL", cls.interval),
            saves=max(1, _env_int("BENCH_SAVES", cls.saves)),
            idle=max(1.0, _env_float("BENCH_IDLE", cls.idle)),
            light_clients=max(1, _env_int("BENCH_LIGHT_CLIENTS", cls.light_clients)),
            gen_timed=max(1, _env_int("BENCH_GEN_TIMED", cls.gen_timed)),
            gen_reloads=max(1, _env_int("BENCH_GEN_RELOADS", cls.gen_reloads)),
            sections=tuple(n.strip() for n in names.split(",") if n.strip()),
        )

    def describe(self) -> str:
        return (
            f"wrk -t{self.wrk_threads} -c{self.connections}; uWSGI {self.processes} processes "
            f"x {self.threads} threads, lazy-apps; throughput: {self.seconds:g}s per target in "
            f"{self.rounds} interleaved rounds after {self.warmup:g}s warm-up; reload: "
            f"{self.seconds:g}s steady windows, {self.reloads} reloads every "
            f"{self.interval:g}s per kind; save_to_live: {self.saves} saves; light load: "
            f"{self.light_clients} paced clients; daemon_footprint: {self.idle:g}s idle; "
            f"generations: {self.gen_timed} timed reloads per stack, {self.gen_reloads} "
            "reloads under wrk"
        )


class Bench:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.procs = Processes()
        self.roots: list[Path] = []
        self.problems: list[str] = []  # odd things seen; printed at the end
        self._fnud: FnudStack | None = None
        self._hand: HandStack | None = None
        self._flask: FlaskDev | None = None
        self._private: list[FnudStack] = []  # sections' own fnud stacks, stopped by close
        self._failed: dict[str, BenchError] = {}  # a stack that failed to start stays failed

    # -- stacks --------------------------------------------------------------------

    def new_dir(self, prefix: str) -> Path:
        root = Path(tempfile.mkdtemp(prefix=f"fb-{prefix}-", dir="/tmp"))
        self.roots.append(root)
        return root

    def new_files(
        self, prefix: str, processes: int | None = None, *, reload_mode: str | None = None,
        settle: float | None = None, extra_ini: str = "",
    ) -> StackFiles:
        """A stack's files (``settings.processes`` workers unless ``processes``); the
        rest goes to ``StackFiles.create``."""
        s = self.settings
        return StackFiles.create(
            self.new_dir(prefix), processes or s.processes, s.threads,
            reload_mode=reload_mode, settle=settle, extra_ini=extra_ini,
        )

    def _start(self, name: str, start: Callable[[], None]) -> None:
        try:
            start()
        except BenchError as exc:
            self._failed[name] = exc
            raise

    def fnud_stack(self) -> FnudStack:
        """The shared fnud stack, in chain reload mode: its reloads compare like for like
        with `c` on the hand-started uWSGI's fifo (the generations section measures the
        default mode)."""
        if self._fnud is None:
            self._fnud = FnudStack(self.new_files("fnud", reload_mode="chain"))
            self._start("fnud", self._fnud.start)
        elif "fnud" in self._failed:
            raise self._failed["fnud"]
        return self._fnud

    def hand_stack(self) -> HandStack:
        if self._hand is None:
            self._hand = HandStack(self.new_files("hand"), self.procs)
            self._start("hand", self._hand.start)
        elif "hand" in self._failed:
            raise self._failed["hand"]
        return self._hand

    def flask_dev(self) -> FlaskDev:
        if self._flask is None:
            self._flask = FlaskDev(self.new_dir("flask"), self.procs)
            self._start("flask", self._flask.start)
        elif "flask" in self._failed:
            raise self._failed["flask"]
        return self._flask

    def private_fnud(
        self, prefix: str, extra_toml: str = "", processes: int | None = None, *,
        reload_mode: str | None = None, settle: float | None = None, extra_ini: str = "",
        prepare: Callable[[StackFiles], None] | None = None,
    ) -> FnudStack:
        """A started fnud stack of the section's own; ``extra_toml`` is appended to its
        fnud.toml, ``prepare`` may edit its files before the start, the rest goes to
        ``new_files``. ``stop_private`` (or ``close``) stops it."""
        files = self.new_files(
            prefix, processes, reload_mode=reload_mode, settle=settle, extra_ini=extra_ini
        )
        if extra_toml:
            with open(files.toml, "a") as toml:
                toml.write(extra_toml)
        if prepare is not None:
            prepare(files)
        return self.private_stack(files)

    def private_stack(self, files: StackFiles) -> FnudStack:
        """A started fnud stack of the section's own, from files it made (e.g. a gunicorn
        stack); ``stop_private`` (or ``close``) stops it."""
        stack = FnudStack(files)
        self._private.append(stack)
        stack.start()
        return stack

    def stop_private(self, stack: FnudStack) -> list[str]:
        """``fnud stop`` on a private stack; what it left behind is killed and returned."""
        if stack in self._private:
            self._private.remove(stack)
        return stack.stop()

    @property
    def shared_fnud(self) -> FnudStack | None:
        """The shared fnud stack if an earlier section started it (never starts it)."""
        if self._fnud is None or "fnud" in self._failed or not self._fnud.started:
            return None
        return self._fnud

    # -- load ----------------------------------------------------------------------

    def wrk(self, url: str, seconds: float | None = None) -> WrkResult:
        s = self.settings
        return run_wrk(
            self.procs, url, s.seconds if seconds is None else seconds, s.wrk_threads,
            s.connections,
        )

    def wrk_background(self, url: str, max_seconds: float) -> WrkRun:
        s = self.settings
        return WrkRun(self.procs, url, max_seconds, s.wrk_threads, s.connections)

    # -- the end -------------------------------------------------------------------

    def close(self, keep_dirs: bool = False) -> list[str]:
        """Stop everything started; return the leftovers that had to be killed."""
        problems: list[str] = []
        for stack in list(self._private):
            try:
                problems += self.stop_private(stack)
            except Exception as exc:  # still stop the rest
                problems.append(f"fnud stop ({stack.files.root}): {exc!r}")
        if self._fnud is not None:
            try:
                problems += self._fnud.stop()
            except Exception as exc:  # still stop the rest
                problems.append(f"fnud stop: {exc!r}")
        if self._hand is not None:
            self._hand.stop()
        if self._flask is not None:
            self._flask.stop()
        self.procs.close()
        problems += [f"left behind, killed: {what}" for what in kill_under(self.roots)]
        if not keep_dirs:
            for root in self.roots:
                shutil.rmtree(root, ignore_errors=True)
        return problems
