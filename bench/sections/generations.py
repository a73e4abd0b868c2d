"""Generation reloads against chain reloads, their memory, and what held
sockets and generations give under wrk: lossless reloads and crashes, save -> live."""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass, field

from bench.client import Answer, Client, describe_failures
from bench.context import Bench
from bench.observe import MemorySampler, Timed, timed_cli
from bench.report import Table, ms, ratio
from bench.sections.generations_load import KillOutcome, WrkReloads, kills, reloads_under_wrk
from bench.sections.generations_save import (
    cold_preflight,
    compare_table,
    save_table,
    saves_to_live,
)
from bench.stacks import FnudStack

SETTLE = 2.0  # [reload] settle of every stack here: the settle is not what is measured
PAUSE = 0.02  # each light-load client waits this long between its requests
LEAD = 2.0  # seconds of light load (and steady memory samples) before the first reload
PRELOADED = "lazy-apps = false\n"  # appended to the bench's ini (which says true)


@dataclass(frozen=True)
class Kind:
    mode: str  # [uwsgi] reload
    workers: int
    extra_ini: str = ""
    cold: bool = False  # [reload] warm_preflight = false: every check a fresh interpreter

    @property
    def label(self) -> str:
        return (self.mode + (", preloaded" if self.extra_ini else "")
                + (", cold preflight" if self.cold else ""))


KINDS = [
    Kind("generation", 4), Kind("generation", 4, cold=True), Kind("generation", 16),
    Kind("chain", 4), Kind("chain", 16), Kind("generation", 16, PRELOADED),
    Kind("generation", 4, PRELOADED),
]


@dataclass
class Timing:
    kind: Kind
    runs: list[Timed] = field(default_factory=list)
    olds: list[set[int]] = field(default_factory=list)  # worker PIDs before each run
    answers: list[Answer] = field(default_factory=list)
    steady_rss: float | None = None
    peak_rss: int | None = None
    peak_uwsgi: int = 0

    def switch(self, run: Timed) -> float | None:
        """Command -> every worker of the new generation serves (the switch), from the
        daemon's progress lines; a chain reload: -> its last worker replaced."""
        if self.kind.mode == "generation":
            return run.at(" serving; ")
        last = f"({self.kind.workers}/{self.kind.workers})"
        return run.at(last) if run.code == 0 else None

    def gate(self, run: Timed) -> float | None:
        """Command -> the gate passed (the app imported in a fresh interpreter)."""
        return run.at("starting uWSGI on the held sockets", "uwsgi: chain reload",
                      "uwsgi: graceful reload")

    def preflight(self, run: Timed) -> float | None:
        """The app check alone: its progress line -> the gate passed."""
        began, passed = run.at("in a fresh interpreter"), self.gate(run)
        return None if began is None or passed is None else passed - began

    def retire(self, run: Timed) -> float | None:
        """The settle passed -> the CLI returned: stopping the paused generation."""
        began = run.at("stopping (settle passed)")
        return None if began is None else run.seconds - began

    def late_old(self) -> int | None:
        """Answers from a previous generation's workers to requests started after the
        switch (the previous generation is paused then); None for chain reloads."""
        if self.kind.mode != "generation":
            return None
        count = 0
        for i, (run, old) in enumerate(zip(self.runs, self.olds, strict=True)):
            switch = self.switch(run)
            if switch is None:
                continue
            until = self.runs[i + 1].began if i + 1 < len(self.runs) else float("inf")
            count += sum(1 for a in self.answers
                         if run.began + switch <= a.began < until and _pid(a) in old)
        return count


def _pid(answer: Answer) -> int | None:
    try:
        return int(json.loads(answer.body)["pid"]) if answer.ok else None
    except (ValueError, KeyError, TypeError):
        return None


def _time_reloads(bench: Bench, stack: FnudStack, kind: Kind) -> Timing:
    """BENCH_GEN_TIMED full `fnud reload --app` under light load, one after the other;
    the stack's memory sampled all along."""
    s = bench.settings
    timing = Timing(kind)
    daemon = int(stack.status()["daemon"]["pid"])
    sampler = MemorySampler(daemon).start()
    load = Client(stack.url + "pid", clients=s.light_clients, pause=PAUSE,
                  max_seconds=LEAD + s.gen_timed * 300)
    try:
        with load:
            load.wait_answers(20)
            began = time.monotonic()
            time.sleep(LEAD)  # a measurement window, not a synchronisation
            steady = [x.rss for x in sampler.between(began, time.monotonic())]
            for _ in range(s.gen_timed):
                timing.olds.append(stack.worker_pids())
                timing.runs.append(timed_cli(stack, "reload", "--app"))
            timing.answers = load.stop()
    finally:
        sampler.stop()
    timing.steady_rss = statistics.median(steady) if steady else None
    during = sampler.between(timing.runs[0].began, timing.runs[-1].ended)
    if during:
        peak = max(during, key=lambda x: x.rss)
        timing.peak_rss, timing.peak_uwsgi = peak.rss, peak.uwsgi
    for i, run in enumerate(timing.runs, 1):
        if run.code != 0:
            bench.problems.append(f"generations: {kind.label} {kind.workers} workers, reload "
                                  f"#{i} exit {run.code}: {run.last()}")
    return timing


def _stack(bench: Bench, kind: Kind) -> FnudStack:
    return bench.private_fnud(
        f"gen-{kind.mode}{kind.workers}", processes=kind.workers, reload_mode=kind.mode,
        settle=SETTLE, extra_ini=kind.extra_ini,
        prepare=cold_preflight if kind.cold else None,
    )


def generations(bench: Bench) -> list[Table]:
    """Private fnud stacks (the bench's ini and conf: 2 threads per worker, lazy-apps
    unless "preloaded"; nginx 2 workers) with `[reload] settle = 2`. (1) Reload time: on a
    stack per kind ([uwsgi] reload = "generation" or "chain", 4 or 16 workers),
    BENCH_GEN_TIMED `fnud reload --app` one after the other under light load
    (BENCH_LIGHT_CLIENTS client threads, each: GET /pid on a new connection, then a 20 ms
    pause). "gate" = command -> the daemon's progress line saying the gate passed (app
    imported in a fresh interpreter); "to serving" = command -> the line "generation N
    serving" (every worker of the new generation accepts with the app, the old one
    paused), for chain: -> the line of the last worker replaced; the settle and the
    retirement of the old generation are not counted ("full" = the CLI's wall time, which
    counts them). Each time is when the bench read the line (streamed). "late old" =
    answers from the previous generation's workers to requests started after the switch.
    (2) Memory: summed RSS (psutil) of the stack's uWSGI processes of every generation and
    nginx's master and workers, sampled every 50 ms; steady = median over 2 s before the
    first reload, peak = max during the reloads (RSS counts shared pages in every
    process). (3) On the 4-worker generation stack: a steady wrk -t2 -c32 window of
    BENCH_SECONDS, then BENCH_GEN_RELOADS `fnud reload --app` back to back under wrk -c32
    (each waits for the settle and the retirement). (4) Same stack, wrk -c32: kill -9 of
    the uWSGI master, then of the nginx master; "recovered" = a GET / through nginx answers
    and `fnud status --json` shows the stack whole with the victim replaced; wrk runs 1 s
    before and after. "failed" = HTTP status >= 400 plus socket errors. (5) Save -> live:
    a 4-worker generation stack with [watch] on (see save_to_live), BENCH_SAVES edits of
    app.py, each after the previous reload retired its old generation.
    """
    timings: list[Timing] = []
    under_wrk: WrkReloads | None = None
    killed: list[KillOutcome] = []
    for kind in KINDS:
        stack = _stack(bench, kind)
        try:
            timings.append(_time_reloads(bench, stack, kind))
            if kind == KINDS[0]:
                under_wrk = reloads_under_wrk(bench, stack)
                killed = kills(bench, stack)
        finally:
            bench.problems += bench.stop_private(stack)
    saves = [saves_to_live(bench, SETTLE, extra, before)
             for extra in ("", PRELOADED) for before in (True, False)]
    tables = [_time_table(timings), _memory_table(timings)]
    if under_wrk is not None:
        tables.append(under_wrk.table())
    tables.append(_kill_table(killed, bench.settings.connections))
    tables += [save_table(run, bench) for run in saves if not run.before]
    tables.append(compare_table(saves))
    return tables


def _med(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def _time_table(timings: list[Timing]) -> Table:
    table = Table(
        "reload time under light load (settle not counted)",
        ["kind", "workers", "reloads ok", "gate med", "preflight med", "to serving med",
         "to serving max",
         "full med", "retire med", "late old", "requests", "failed"],
    )
    serving: dict[tuple[str, int], float | None] = {}
    for t in timings:
        switches = [t.switch(r) for r in t.runs]
        serving[(t.kind.label, t.kind.workers)] = _med(switches)
        late = t.late_old()
        table.rows.append([
            t.kind.label, t.kind.workers,
            f"{sum(r.code == 0 for r in t.runs)}/{len(t.runs)}",
            ms(_med([t.gate(r) for r in t.runs])), ms(_med([t.preflight(r) for r in t.runs])),
            ms(_med(switches)),
            ms(max((x for x in switches if x is not None), default=None)),
            ms(_med([r.seconds for r in t.runs])), ms(_med([t.retire(r) for r in t.runs])),
            "-" if late is None else late,
            len(t.answers), describe_failures(t.answers),
        ])
    gen16, chain16 = serving.get(("generation", 16)), serving.get(("chain", 16))
    preflight = {t.kind.label: _med([t.preflight(r) for r in t.runs]) for t in timings
                 if t.kind.workers == 4 and t.kind.mode == "generation" and not t.kind.extra_ini}
    table.notes += [
        f"16 workers, generation / chain: {ratio(gen16, chain16)} (goal: <= 0.3x)",
        "preflight, warm / cold: " + ratio(preflight.get("generation"),
                                           preflight.get("generation, cold preflight"))
        + " (goal: the warm check <= 100 ms)",
        f"generation, 16 / 4 workers: {ratio(gen16, serving.get(('generation', 4)))}; "
        f"chain, 16 / 4 workers: {ratio(chain16, serving.get(('chain', 4)))}",
        f"16 workers, generation preloaded / chain: "
        f"{ratio(serving.get(('generation, preloaded', 16)), chain16)}",
        "full = the CLI's wall time: + the settle (2 s) + retire (the settle passed -> the "
        "paused generation stopped and the CLI back)",
    ]
    return table


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value / 2**20:.0f} MiB"


def _memory_table(timings: list[Timing]) -> Table:
    table = Table(
        "stack memory (uWSGI of every generation + nginx), steady vs peak during reloads",
        ["kind", "workers", "steady RSS", "peak RSS", "peak / steady", "uWSGI procs at peak"],
    )
    for t in timings:
        table.rows.append([
            t.kind.label, t.kind.workers, _mib(t.steady_rss), _mib(t.peak_rss),
            ratio(t.peak_rss, t.steady_rss), t.peak_uwsgi,
        ])
    table.notes.append("generation reloads need ~2x (two generations at once)")
    return table


def _kill_table(killed: list[KillOutcome], connections: int) -> Table:
    table = Table(
        f"kill -9 under wrk -c{connections} (held sockets), 4-worker generation stack",
        ["kill -9", "recovered", "requests", "failed", "fnud", "nginx error log"],
    )
    for k in killed:
        table.rows.append([k.label, ms(k.recovered), k.load.requests if k.load else "-",
                           k.failed_text(), k.detail, k.nginx_errors])
    table.notes.append(
        f"goal: no more failures than the requests in flight (at most {connections} here)"
    )
    return table

