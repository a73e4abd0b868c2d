"""The chaos soak for a minute, with a fixed seed (`make soak` runs it longer, with a
random one): releases good and bad, rollbacks, signals, saves, kills of every part, a
full log disk and a control flood, under load; after every step the model says which
release must serve, and at the end nothing failed beyond what was in flight at a kill,
no refused release ever answered, no descriptor leaked and nothing was left running."""

from __future__ import annotations

from testkit.soak import wrk
from testkit.soak.run import Soak

SEED = 20261206
SECONDS = 60.0


def test_a_minute_of_chaos_keeps_every_invariant() -> None:
    report = Soak(SEED, SECONDS).run(wrk.run if wrk.available() else None)
    print("\n".join(report.lines()))
    assert len(report.steps) >= 5
    assert report.requests > 0
