"""Set-up the tests share that is not behaviour under test: the wheelhouse for Debian's
/usr/bin/python3 (uWSGI compiled for it). Built once per run by ``make test`` (``python -m
testkit.assets``, outside any test's timeout) and cached in .venv/fleet-wheels, where the
fleet test bed finds the same one.

A test that needs it calls :func:`system_wheelhouse`: a cache hit when ``make test``
built it, a build (minutes) when pytest was run by hand on a fresh checkout.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from testkit.stackdir import ROOT

SYSTEM_PYTHON = Path("/usr/bin/python3")
WHEEL_CACHE = ROOT / ".venv" / "fleet-wheels"


def system_wheelhouse() -> Path:
    """The tar of wheels for fnud and its dependencies, for /usr/bin/python3."""
    sys.path.insert(0, str(ROOT / "deploy" / "testbed"))
    try:
        import wheels  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    tar: Path = wheels.build(ROOT, str(SYSTEM_PYTHON), WHEEL_CACHE)
    return tar


def main() -> int:
    if not SYSTEM_PYTHON.exists():
        print(f"test assets: no {SYSTEM_PYTHON}: the tests that need it skip")
        return 0
    began = time.monotonic()
    tar = system_wheelhouse()
    print(f"test assets: {tar.relative_to(ROOT)} ready in {time.monotonic() - began:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
