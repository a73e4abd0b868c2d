"""Set-up the tests share that is not behaviour under test, built once per run by ``make
test`` (``python -m testkit.assets``, outside any test's timeout) and cached:

- the wheelhouse for Debian's /usr/bin/python3 (uWSGI compiled for it), in
  .venv/fleet-wheels, where the fleet test bed finds the same one;
- an app virtualenv another user can run (made from /usr/bin/python3, with Flask,
  uWSGI and gunicorn), outside root's home and this checkout (a fresh clone may be
  0700): the tests that run the app as www-data use it.

A test that needs one calls :func:`system_wheelhouse` or :func:`app_venv`: a cache hit
when ``make test`` built it, a build (minutes) when pytest was run by hand.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from testkit.stackdir import ROOT

SYSTEM_PYTHON = Path("/usr/bin/python3")
WHEEL_CACHE = ROOT / ".venv" / "fleet-wheels"
APP_VENVS = Path("/var/tmp/fnud-test-venvs")  # readable by every user, kept across runs


def system_wheelhouse() -> Path:
    """The tar of wheels for fnud and its dependencies, for /usr/bin/python3."""
    sys.path.insert(0, str(ROOT / "deploy" / "testbed"))
    try:
        import wheels  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    tar: Path = wheels.build(ROOT, str(SYSTEM_PYTHON), WHEEL_CACHE)
    return tar


def app_venv() -> Path:
    """A virtualenv of /usr/bin/python3 with Flask, uWSGI and gunicorn, root's and
    readable by every user (the app's user runs it, and may not change it)."""
    tar = system_wheelhouse()
    deps_key = tar.stem.rsplit("-", 1)[-1]  # the dependencies' part: not fnud's source
    venv = APP_VENVS / f"app-{deps_key}"
    if (venv / ".complete").exists():
        return venv
    APP_VENVS.mkdir(mode=0o755, parents=True, exist_ok=True)
    APP_VENVS.chmod(0o755)
    partial = venv.with_name(venv.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(tar) as archive:
            archive.extractall(tmp, filter="data")
        subprocess.run([SYSTEM_PYTHON, "-m", "venv", partial], check=True)
        pip = [str(partial / "bin" / "pip"), "install", "--quiet", "--no-cache-dir",
               "--disable-pip-version-check"]
        subprocess.run([*pip, "--no-index", "--find-links", f"{tmp}/wheels", "flask",
                        "uwsgi"], check=True, stdin=subprocess.DEVNULL)
        subprocess.run([*pip, "gunicorn"], check=True, stdin=subprocess.DEVNULL)
    subprocess.run(["chmod", "-R", "a+rX,go-w", str(partial)], check=True)
    partial.rename(venv)
    (venv / ".complete").touch()
    return venv


def main() -> int:
    if not SYSTEM_PYTHON.exists():
        print(f"test assets: no {SYSTEM_PYTHON}: the tests that need it skip")
        return 0
    began = time.monotonic()
    tar = system_wheelhouse()
    venv = app_venv()
    print(f"test assets: {tar.relative_to(ROOT)} and {venv} ready in "
          f"{time.monotonic() - began:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
