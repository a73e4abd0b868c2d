"""The generations section's save -> live: [watch] on, a 4-worker generation stack."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.client import Answer, Client, describe_failures
from bench.context import Bench
from bench.report import Table, ms, ratio
from bench.sections.save_to_live import DEBOUNCE_MS, WATCH_TOML, set_greeting
from bench.stacks import FnudStack, StackFiles

WORKERS = 4
#: before the warm preflight: every check a fresh interpreter, the debounce then default
BEFORE_DEBOUNCE_MS = 300
BEFORE_TOML = f"""
[watch]
enabled = true
debounce_ms = {BEFORE_DEBOUNCE_MS}
"""
SAVE_TIMEOUT = 60.0
IDLE_TIMEOUT = 120.0  # settle + retirement of the old generation after a save
PAUSE = 0.02


@dataclass
class SaveOutcome:
    number: int
    text: str
    written: float  # monotonic
    live: float | None = None  # monotonic: a status poll showed the new generation whole
    to_begin: float | None = None  # write -> the daemon began the reload (last_reload.at)
    result: str = ""
    first_new: float | None = None  # write -> first load answer with the new greeting
    stale: int = 0  # answers without the new greeting to requests started after live

    @property
    def latency(self) -> float | None:
        return None if self.live is None else self.live - self.written


def _live(state: dict[str, Any], old: set[int], generation: int) -> bool:
    """The status shows a newer generation serving with WORKERS new workers, all
    accepting with the app."""
    if int(state.get("generation", {}).get("number") or 0) <= generation:
        return False
    workers = state.get("programs", {}).get("uwsgi", {}).get("workers", [])
    fresh = [w for w in workers if w.get("pid") not in old and w.get("accepting")
             and w.get("apps")]
    return len(workers) == WORKERS and len(fresh) == WORKERS


def _idle(stack: FnudStack, since_wall: float) -> dict[str, Any]:
    """Poll until this save's reload is over (settled, old generation retired)."""
    deadline = time.monotonic() + IDLE_TIMEOUT
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        state = stack.status()
        last = state.get("last_reload") or {}
        if (not state.get("reloading") and float(last.get("at") or 0) >= since_wall
                and not state.get("generation", {}).get("previous")):
            break
        time.sleep(0.1)
    return state


def _save(stack: FnudStack, app: Path, number: int) -> SaveOutcome:
    before = stack.status()
    old = {int(w["pid"]) for w in before["programs"]["uwsgi"]["workers"]}
    generation = int(before["generation"]["number"])
    text = f"Saved #{number} at {time.time():.6f}"
    written_wall = time.time()
    outcome = SaveOutcome(number, text, time.monotonic())
    set_greeting(app, text)
    while time.monotonic() - outcome.written < SAVE_TIMEOUT:
        if _live(stack.status(), old, generation):
            outcome.live = time.monotonic()
            break
        time.sleep(0.02)
    state = _idle(stack, written_wall)
    last = state.get("last_reload") or {}
    if float(last.get("at") or 0) >= written_wall:
        outcome.to_begin = float(last["at"]) - written_wall
        outcome.result = f"{last.get('result')}"
    else:
        outcome.result = "no reload seen"
    return outcome


@dataclass
class SaveRun:
    saves: list[SaveOutcome]
    answers: list[Answer]  # every load answer over the section
    load: str  # the load, described
    preloaded: bool = False
    before: bool = False  # cold preflight and the old debounce

    @property
    def label(self) -> str:
        how = "preloaded" if self.preloaded else "lazy-apps"
        if self.before:
            return f"{how}, before (cold preflight, {BEFORE_DEBOUNCE_MS} ms debounce)"
        return f"{how}, now (warm preflight, {DEBOUNCE_MS} ms debounce)"


def cold_preflight(files: StackFiles) -> None:
    text = files.toml.read_text()
    files.toml.write_text(text.replace("[reload]\n", "[reload]\nwarm_preflight = false\n", 1))


def saves_to_live(
    bench: Bench, settle: float, extra_ini: str = "", before: bool = False
) -> SaveRun:
    """``extra_ini``: appended to the bench's ini (``lazy-apps = false``: preloaded);
    ``before``: the cold preflight and the old debounce, for the comparison."""
    s = bench.settings
    stack = bench.private_fnud(
        "gen-watch", BEFORE_TOML if before else WATCH_TOML, processes=WORKERS,
        reload_mode="generation", settle=settle, extra_ini=extra_ini,
        prepare=cold_preflight if before else None,
    )
    app = stack.files.root / "app" / "app.py"
    load = Client(stack.url, clients=s.light_clients, pause=PAUSE,
                  max_seconds=s.saves * (SAVE_TIMEOUT + IDLE_TIMEOUT) + 10)
    saves: list[SaveOutcome] = []
    try:
        with load:
            load.wait_answers(20)
            for number in range(1, s.saves + 1):
                saves.append(_save(stack, app, number))
            answers = load.stop()
    finally:
        bench.problems += bench.stop_private(stack)
    _from_answers(saves, answers)
    return SaveRun(saves, answers, load.describe(), "lazy-apps = false" in extra_ini, before)


def _from_answers(saves: list[SaveOutcome], answers: list[Answer]) -> None:
    for i, save in enumerate(saves):
        body = f"{save.text}\n".encode()
        save.first_new = next((a.ended - save.written for a in answers
                               if a.began >= save.written and a.body == body), None)
        if save.live is not None:
            until = saves[i + 1].written if i + 1 < len(saves) else float("inf")
            save.stale = sum(1 for a in answers
                             if save.live <= a.began < until and a.ok and a.body != body)


def _med(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def save_table(run: SaveRun, bench: Bench) -> Table:
    table = Table(
        f"save -> live, generation reload, {WORKERS} workers, {run.label}",
        ["save", "write -> live", "write -> reload begins", "first new answer",
         "stale after live", "result"],
    )
    for save in run.saves:
        table.rows.append([
            f"#{save.number}", ms(save.latency), ms(save.to_begin), ms(save.first_new),
            save.stale, save.result if save.live is not None else f"NOT LIVE: {save.result}",
        ])
    saves = run.saves
    table.rows.append([
        "median", ms(_med([x.latency for x in saves])), ms(_med([x.to_begin for x in saves])),
        ms(_med([x.first_new for x in saves])), "",
        f"{sum(x.live is not None for x in saves)}/{len(saves)} live",
    ])
    table.notes += [
        "live = a `fnud status --json` poll (back to back; one call is the resolution) shows "
        f"a newer generation with {WORKERS} new workers accepting; goal: <= 0.8 s "
        "preloaded, <= 1.2 s lazy-apps",
        "first new answer = write -> end of the first load request answering the new text",
        f"load: {run.load}; failed {describe_failures(run.answers)} of {len(run.answers):,}",
    ]
    for save in saves:
        if save.live is None or save.result != "ok":
            bench.problems.append(f"generations save #{save.number}: live "
                                  f"{save.live is not None}, reload {save.result}")
    if any(not a.ok for a in run.answers):
        bench.problems.append(f"generations save -> live: failed requests "
                              f"{describe_failures(run.answers)}")
    return table


def compare_table(runs: list[SaveRun]) -> Table:
    """Before and now side by side, measured in this run."""
    table = Table(
        f"save -> live, before / now, medians of each run's saves ({WORKERS} workers)",
        ["stack", "write -> live", "write -> reload begins", "first new answer", "live"],
    )
    for run in runs:
        saves = run.saves
        table.rows.append([
            run.label, ms(_med([x.latency for x in saves])),
            ms(_med([x.to_begin for x in saves])), ms(_med([x.first_new for x in saves])),
            f"{sum(x.live is not None for x in saves)}/{len(saves)}",
        ])
    for how in ("lazy-apps", "preloaded"):
        now = [r for r in runs if r.label.startswith(how) and not r.before]
        old = [r for r in runs if r.label.startswith(how) and r.before]
        if now and old:
            table.notes.append(f"{how}: now / before = " + ratio(
                _med([x.latency for x in now[0].saves]), _med([x.latency for x in old[0].saves])
            ))
    return table
