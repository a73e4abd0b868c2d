"""`make soak`: python -m testkit.soak [--seconds N] [--seed S] (a random seed, printed)."""

from __future__ import annotations

import argparse
import random
import sys

from testkit.soak import wrk
from testkit.soak.run import Soak, SoakFailure


def main() -> int:
    parser = argparse.ArgumentParser(prog="make soak")
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    print(f"soak: seed {seed}, {args.seconds:g}s (replay: make soak SEED={seed})", flush=True)
    soak = Soak(seed, args.seconds, say=lambda line: print(line, flush=True))
    try:
        report = soak.run(wrk.run if wrk.available() else None)
    except SoakFailure as exc:
        print(f"SOAK FAILED: {exc}", flush=True)
        return 1
    print("\n".join(report.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
