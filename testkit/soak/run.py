"""The soak: a seeded random sequence of steps against one stack under load, checked
after every step against the model and at the end against its invariants.

Invariants: each step costs at most its bound of the load client's requests (those in
flight at a kill), and wrk's failures stay within the kills' bounds too; no request is
ever answered by a refused release; the daemon's descriptors come back to what it held
before (its memory is reported); after `fnud stop` nothing of the stack is left. A
failure says the seed and the step, so ``python -m testkit.soak --seed N`` replays it.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from testkit.load import Load, Record
from testkit.soak.bed import Bed
from testkit.soak.steps import STEPS, Done, Model
from testkit.stackdir import assert_no_leftovers, wait_for

PROBES = 12  # GETs after each step, each must answer the model's text
GRACE = 1.0  # seconds after a step that still count as its own (requests it hurt end late)


class SoakFailure(AssertionError):
    pass


@dataclass
class Taken:
    index: int
    kind: str
    began: float
    ended: float
    done: Done


@dataclass
class Report:
    seed: int
    seconds: float = 0.0
    steps: list[Taken] = field(default_factory=list)
    requests: int = 0
    failed: int = 0
    failed_by_kind: dict[str, tuple[int, int]] = field(default_factory=dict)  # (failed, bound)
    wrk: tuple[int, int, int] = (0, 0, 0)  # (requests, failed, bound)
    fds: tuple[int, int] = (0, 0)  # before, after
    rss: tuple[int, int] = (0, 0)

    def lines(self) -> list[str]:
        kinds = sorted({s.kind for s in self.steps})
        out = [f"seed {self.seed}: {len(self.steps)} steps in {self.seconds:.0f}s, "
               f"{len(kinds)} kinds"]
        out += [f"  {kind}: failed {f} / bound {b}" for kind, (f, b) in
                sorted(self.failed_by_kind.items())]
        out.append(f"load client: {self.requests:,} requests, {self.failed} failed")
        out.append(f"wrk: {self.wrk[0]:,} requests, {self.wrk[1]} failed / bound {self.wrk[2]}")
        out.append(f"daemon fds {self.fds[0]} -> {self.fds[1]}, RSS "
                   f"{self.rss[0] / 2**20:.1f} -> {self.rss[1] / 2**20:.1f} MiB")
        return out


class Soak:
    def __init__(self, seed: int, seconds: float, say: Callable[[str], None] = print) -> None:
        self.seed = seed
        self.seconds = seconds
        self.say = say
        self.rng = random.Random(seed)
        self.report = Report(seed)

    def order(self) -> Iterator[str]:
        """Every kind once (in a seeded order), then seeded random choices."""
        kinds = list(STEPS)
        self.rng.shuffle(kinds)
        yield from kinds
        while True:
            yield self.rng.choice(list(STEPS))

    def run(self, wrk: Callable[[str, float], tuple[int, int]] | None = None) -> Report:
        bed = Bed()
        try:
            bed.start()
            self._soak(bed, wrk)
        finally:
            bed.close()
            assert_no_leftovers([bed.root])
        return self.report

    def _soak(self, bed: Bed, wrk: Callable[[str, float], tuple[int, int]] | None) -> None:
        state = bed.quiet()
        model = Model(bed.text_of(bed.pointed()), bed.pointed())
        daemon = int(state["daemon"]["pid"])
        fds, rss = bed.footprint(daemon)
        began = time.monotonic()
        with Load(bed.stack.url + "/", concurrency=4, max_seconds=self.seconds * 4 + 600,
                  record=True) as load, _wrk_beside(wrk, bed.stack.url + "/", self.seconds) as w:
            for index, kind in enumerate(self.order()):
                if time.monotonic() - began > self.seconds:
                    break
                self._step(bed, model, index, kind)
                daemon, fds, rss = self._same_daemon(bed, daemon, fds, rss)
            records = load.stop().records
        self.report.seconds = time.monotonic() - began
        self._judge(records, model, w)
        self._footprint(bed, daemon, fds, rss)

    def _step(self, bed: Bed, model: Model, index: int, kind: str) -> None:
        self.say(f"step {index}: {kind}")
        began = time.monotonic()
        try:
            done = STEPS[kind](bed, model, self.rng)
            bed.quiet()
            self._probe(bed, model)
        except AssertionError as exc:
            raise SoakFailure(f"seed {self.seed}, step {index} ({kind}): {exc}") from None
        self.report.steps.append(Taken(index, kind, began, time.monotonic(), done))

    def _probe(self, bed: Bed, model: Model) -> None:
        with Load(bed.stack.url + "/", concurrency=2, record=True) as probe:
            probe.wait_requests(PROBES)
            records = probe.stop().records
        bodies = {r.body.decode(errors="replace").strip() for r in records if not r.failed}
        assert bodies == {model.serving}, f"serving {bodies}, the model says {model.serving!r}"

    def _same_daemon(self, bed: Bed, daemon: int, fds: int, rss: int) -> tuple[int, int, int]:
        """A new daemon (after a kill): its own footprint from now on."""
        now = bed.daemon()
        if now == daemon:
            return daemon, fds, rss
        return now, *bed.footprint(now)

    def _judge(self, records: list[Record], model: Model, wrk: list[tuple[int, int]]) -> None:
        report = self.report
        report.requests = len(records)
        report.failed = sum(r.failed for r in records)
        owners: list[tuple[Record, Taken | None]] = [
            (r, _owner(report.steps, r.began)) for r in records if r.failed
        ]
        for taken in report.steps:
            hurt = [r for r, owner in owners if owner is taken]
            failed, bound = report.failed_by_kind.get(taken.kind, (0, 0))
            report.failed_by_kind[taken.kind] = (failed + len(hurt), bound + taken.done.bound)
            if len(hurt) > taken.done.bound:
                how = Counter(r.error or str(r.status) for r in hurt)
                at = ", ".join(f"{r.began - taken.began:.2f}s" for r in hurt[:5])
                raise SoakFailure(
                    f"seed {self.seed}, step {taken.index} ({taken.kind}): {len(hurt)} failed "
                    f"requests ({dict(how)}, at {at} into the step), at most "
                    f"{taken.done.bound} allowed"
                )
        outside = [r for r, owner in owners if owner is None]
        if outside:
            raise SoakFailure(f"seed {self.seed}: {len(outside)} requests failed between steps")
        refused = {r.body.decode(errors="replace").strip() for r in records} & model.never
        if refused:
            raise SoakFailure(f"seed {self.seed}: a refused release answered: {refused}")
        if wrk:
            requests, failed = wrk[0]
            bound = sum(t.done.wrk_bound for t in report.steps)
            report.wrk = (requests, failed, bound)
            if failed > bound:
                raise SoakFailure(f"seed {self.seed}: wrk saw {failed} failed, bound {bound}")

    def _footprint(self, bed: Bed, daemon: int, fds: int, rss: int) -> None:
        bed.quiet()
        with contextlib.suppress(AssertionError):
            wait_for(lambda: bed.footprint(daemon)[0] <= fds, timeout=30, interval=0.2)
        after = bed.footprint(daemon)
        self.report.fds, self.report.rss = (fds, after[0]), (rss, after[1])
        if after[0] > fds:
            raise SoakFailure(f"seed {self.seed}: the daemon holds {after[0]} descriptors, "
                              f"{fds} before")


def _owner(steps: list[Taken], began: float) -> Taken | None:
    """The step that was running when a request began (GRACE after its end included,
    unless the next step had begun by then); None: it began between steps."""
    owner = None
    for taken in steps:
        if taken.began > began:
            break
        owner = taken
    if owner is None or began > owner.ended + GRACE:
        return None
    return owner


@contextlib.contextmanager
def _wrk_beside(
    wrk: Callable[[str, float], tuple[int, int]] | None, url: str, seconds: float
) -> Iterator[list[tuple[int, int]]]:
    """wrk for the whole soak in a thread (its result lands in the list)."""
    import threading

    out: list[tuple[int, int]] = []
    if wrk is None:
        yield out
        return
    thread = threading.Thread(target=lambda: out.append(wrk(url, seconds)), daemon=True)
    thread.start()
    try:
        yield out
    finally:
        thread.join(seconds + 120)
