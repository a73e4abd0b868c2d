"""From saving the app's code to every uWSGI worker serving it, with [watch] on."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.client import Answer, Client, describe_failures
from bench.context import Bench
from bench.report import Table, ms
from bench.stacks import FnudStack
from supervisor.config.schema import WatchSection

DEBOUNCE_MS = WatchSection().debounce_ms  # [watch] debounce_ms: fnud's default
WATCH_TOML = """
[watch]
enabled = true
"""
SAVE_TIMEOUT = 60.0  # a save not live by then counts as failed
GAP = 1.0  # seconds of load between one save being live and the next save
CONFIRM = 20  # requests right after "live" that must all carry the new greeting
PAUSE = 0.02  # each light-load client waits this long between its requests


@dataclass(frozen=True)
class Save:
    number: int
    text: str
    written: float  # monotonic
    written_wall: float  # time.time(), to compare with the daemon's last_reload.at
    live: float | None  # monotonic: the status poll that saw every worker new returned
    polls: int
    poll_seconds: float  # mean wall time of one `fnud status --json` call
    reload: dict[str, Any] | None  # the daemon's last_reload for this save
    new_pids: int
    confirm_stale: int  # of the CONFIRM requests, answers without the new greeting
    detail: str = ""

    @property
    def latency(self) -> float | None:
        return None if self.live is None else self.live - self.written

    @property
    def to_begin(self) -> float | None:
        """Write -> the daemon began the reload: inotify + debounce + the loop's turn."""
        return None if self.reload is None else float(self.reload["at"]) - self.written_wall

    @property
    def reload_seconds(self) -> float | None:
        return None if self.reload is None else float(self.reload["duration"])

    @property
    def poll_lag(self) -> float | None:
        """Reload complete (daemon's clock) -> the bench's status poll saw it."""
        if self.latency is None or self.to_begin is None or self.reload_seconds is None:
            return None
        return self.latency - self.to_begin - self.reload_seconds


def set_greeting(app: Path, text: str) -> None:
    """Rewrite ``GREETING = "..."`` in place, the way an editor saves (truncate + write)."""
    source = app.read_text()
    start = source.index('GREETING = "') + len('GREETING = "')
    end = source.index('"', start)
    app.write_text(source[:start] + text + source[end:])


def _all_new(state: dict[str, Any], old: set[int], processes: int, since: float) -> str | None:
    """None when fnud status shows the save live: every program RUNNING, ``processes``
    workers, all with a PID not in ``old``, accepting with the app, and a last_reload
    that began after the write and ended ok; else what is still missing."""
    programs = state.get("programs", {})
    down = [n for n, p in programs.items() if p.get("state") != "RUNNING"]
    if down:
        return f"not RUNNING: {', '.join(down)}"
    workers = programs.get("uwsgi", {}).get("workers", [])
    fresh = [w for w in workers if w.get("pid") not in old and w.get("accepting") and w.get("apps")]
    if len(workers) != processes or len(fresh) != processes:
        return f"{len(fresh)}/{processes} workers new and accepting"
    last = state.get("last_reload") or {}
    if float(last.get("at") or 0) < since:
        return "no reload since the write yet"
    if last.get("result") != "ok":
        return f"last reload {last.get('result')}: {last.get('message')}"
    return None


def _save(stack: FnudStack, app: Path, number: int, processes: int) -> Save:
    before = stack.status()
    old = {int(w["pid"]) for w in before["programs"]["uwsgi"]["workers"]}
    text = f"Saved #{number} at {time.time():.6f}"
    written_wall = time.time()
    written = time.monotonic()
    set_greeting(app, text)
    polls = 0
    polling = 0.0
    missing = "no status yet"
    while time.monotonic() - written < SAVE_TIMEOUT:
        called = time.monotonic()
        state = stack.status()
        polls += 1
        polling += time.monotonic() - called
        last = state.get("last_reload") or {}
        if float(last.get("at") or 0) >= written_wall and last.get("result") != "ok":
            return Save(number, text, written, written_wall, None, polls, polling / polls,
                        last, 0, 0, f"reload {last.get('result')}: {last.get('message')}")
        missing = _all_new(state, old, processes, written_wall) or ""
        if not missing:
            live = time.monotonic()
            stale = sum(1 for a in _confirm(stack.url) if a.body != f"{text}\n".encode())
            return Save(number, text, written, written_wall, live, polls, polling / polls,
                        last, processes, stale)
        time.sleep(0.02)
    return Save(number, text, written, written_wall, None, polls, polling / max(1, polls),
                None, 0, 0, f"not live after {SAVE_TIMEOUT:g}s: {missing}")


def _confirm(url: str) -> list[Answer]:
    """CONFIRM sequential requests, each on a new connection (so each may hit any worker)."""
    client = Client(url, clients=1, pause=0.0, max_seconds=10)
    return [client.get() for _ in range(CONFIRM)]


def save_to_live(bench: Bench) -> list[Table]:
    """A private fnud stack (same ini and conf as the others: 4 uWSGI workers, lazy-apps)
    with `[watch] enabled = true` (fnud's default debounce) in its fnud.toml, in
    `[uwsgi] reload = "chain"` mode (the generations section measures save -> live in the
    default generation mode, where "live" comes before the settle's end).
    Under a light load (BENCH_LIGHT_CLIENTS client threads on 127.0.0.1, each: GET / on a
    new connection, then a 20 ms pause), the bench edits GREETING in the stack's copy of
    example/app.py (truncate + write, like an editor) BENCH_SAVES times, one save at a
    time, 1 s of load between one save being live and the next. "live" = the first `fnud
    status --json` (polled back to back; one call's wall time is the resolution) that
    shows every program RUNNING, 4 uWSGI workers that all have PIDs new since the save,
    accepting with the app loaded, and a last_reload that began after the write and is
    ok; then 20 sequential requests must all answer the new greeting. Latency = write ->
    live, split into: write -> reload begins (the daemon's last_reload.at: inotify, the
    debounce, the loop's turn), the reload itself (last_reload.duration: import of
    the app in a fresh interpreter, then chain reload of the 4 workers, one after the
    other), and the lag of the status poll. "first new answer" = write -> the first load
    response carrying the new greeting. "failed" counts every load request that did not
    answer 200 over the whole section; "stale" counts 200 answers without the new greeting
    from requests started after "live".
    """
    s = bench.settings
    stack = bench.private_fnud("watch", WATCH_TOML, reload_mode="chain")
    app = stack.files.root / "app" / "app.py"
    watch = stack.status().get("watch", {})
    bound = s.saves * (SAVE_TIMEOUT + GAP + 10) + 10
    load = Client(stack.url, clients=s.light_clients, pause=PAUSE, max_seconds=bound)
    saves: list[Save] = []
    poll_times: list[float] = []
    with load:
        load.wait_answers(20)
        began = time.monotonic()
        for number in range(1, s.saves + 1):
            save = _save(stack, app, number, s.processes)
            saves.append(save)
            if save.live is None:
                break
            poll_times.append(save.poll_seconds)
            time.sleep(GAP)
        answers = load.stop()
    window = time.monotonic() - began
    in_window = [a for a in answers if a.began >= began]

    table = Table(
        f"save_to_live: {len(saves)} saves of app.py, [watch] debounce_ms = {DEBOUNCE_MS}, "
        "chain reload mode",
        ["save", "write -> live", "write -> reload begins", "reload (daemon)", "poll lag",
         "first new answer", "stale after live", "result"],
    )
    for i, save in enumerate(saves):
        body = f"{save.text}\n".encode()
        first = next((a.ended - save.written for a in answers
                      if a.began >= save.written and a.body == body), None)
        stale = save.confirm_stale
        if save.live is not None:
            until = saves[i + 1].written if i + 1 < len(saves) else float("inf")
            stale += sum(1 for a in answers
                         if save.live <= a.began < until and a.ok and a.body != body)
        table.rows.append([
            f"#{save.number}", ms(save.latency), ms(save.to_begin), ms(save.reload_seconds),
            ms(save.poll_lag), ms(first), stale,
            "live" if save.live is not None else f"FAILED: {save.detail}",
        ])
    live = [x for x in saves if x.latency is not None]
    if live:
        lat = [x.latency for x in live if x.latency is not None]
        begin = [x.to_begin for x in live if x.to_begin is not None]
        rel = [x.reload_seconds for x in live if x.reload_seconds is not None]
        lag = [x.poll_lag for x in live if x.poll_lag is not None]
        table.rows.append(["median", ms(statistics.median(lat)), ms(_med(begin)), ms(_med(rel)),
                           ms(_med(lag)), "", "", f"{len(live)}/{len(saves)} live"])
        table.rows.append(["max", ms(max(lat)), ms(_max(begin)), ms(_max(rel)), ms(_max(lag)),
                           "", "", ""])
        med = statistics.median(lat)
        table.notes += [
            f"median {ms(med)} = write -> reload begins {ms(_med(begin))} "
            f"({_pct(_med(begin), med)}; the configured debounce alone: {DEBOUNCE_MS} ms = "
            f"{_pct(DEBOUNCE_MS / 1000, med)})",
            f"  + the reload {ms(_med(rel))} ({_pct(_med(rel), med)}: preflight import + chain "
            f"reload of {s.processes} workers) + status poll lag {ms(_med(lag))} "
            f"({_pct(_med(lag), med)})",
        ]
    table.notes += [
        f"load: {load.describe()}",
        f"  {len(in_window):,} requests in {window:.1f}s, failed {describe_failures(in_window)}",
        f"status poll: one `fnud status --json` ~{ms(_med(poll_times))} (the resolution of "
        f"'live'); watch mode {watch.get('mode', '?')}",
    ]
    for save in saves:
        if save.live is None:
            bench.problems.append(f"save_to_live #{save.number}: {save.detail}")
    if any(not a.ok for a in in_window):
        bench.problems.append(f"save_to_live: failed requests {describe_failures(in_window)}")
    bench.problems += bench.stop_private(stack)
    return [table]


def _med(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _max(values: list[float]) -> float | None:
    return max(values) if values else None


def _pct(part: float | None, whole: float) -> str:
    return "n/a" if part is None or not whole else f"{100 * part / whole:.0f}%"
