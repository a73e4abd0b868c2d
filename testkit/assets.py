"""Set-up the tests share that is not behaviour under test, built once per run by ``make
test`` (``python -m testkit.assets``, outside any test's timeout) and cached:

- the wheelhouse for Debian's /usr/bin/python3 (uWSGI compiled for it), in
  .venv/fleet-wheels, where the fleet test bed finds the same one;
- an app virtualenv another user can run (made from /usr/bin/python3, with Flask,
  uWSGI and gunicorn), outside root's home and this checkout (a fresh clone may be
  0700): the tests that run the app as www-data use it;
- fnud itself from this checkout's wheel in such a virtualenv: the tests that run fnud
  as an unprivileged user use it.

A test that needs one calls :func:`system_wheelhouse` or :func:`app_venv`: a cache hit
when ``make test`` built it, a build (minutes) when pytest was run by hand.
"""

from __future__ import annotations

import fcntl
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


def fnud_venv() -> Path:
    """fnud itself (this checkout's wheel, with uWSGI) in a virtualenv of /usr/bin/python3
    that every user can run: fnud run by an unprivileged user. One per source tree (older
    ones go after a few hours)."""
    tar = system_wheelhouse()
    venv = APP_VENVS / f"fnud-{tar.stem.removeprefix('wheelhouse-fnud-')}"
    if (venv / ".complete").exists():
        return venv
    for old in APP_VENVS.glob("fnud-*"):  # other trees' (a run may still use one)
        if time.time() - old.stat().st_mtime > 6 * 3600:
            shutil.rmtree(old, ignore_errors=True)
    return _venv(venv, tar, ["fnud[uwsgi]"], [])


def app_venv() -> Path:
    """A virtualenv of /usr/bin/python3 with Flask, uWSGI and gunicorn, root's and
    readable by every user (the app's user runs it, and may not change it)."""
    tar = system_wheelhouse()
    deps_key = tar.stem.rsplit("-", 1)[-1]  # the dependencies' part: not fnud's source
    venv = APP_VENVS / f"app-{deps_key}"
    if (venv / ".complete").exists():
        return venv
    return _venv(venv, tar, ["flask", "uwsgi"], ["gunicorn"])


def _venv(venv: Path, tar: Path, local: list[str], index: list[str]) -> Path:
    """A venv of /usr/bin/python3 with ``local`` from the wheelhouse and ``index`` from
    the package index, root's and readable by everyone."""
    APP_VENVS.mkdir(mode=0o755, parents=True, exist_ok=True)
    APP_VENVS.chmod(0o755)
    # two runs at once (two clones on one machine) build it once: the second waits
    with open(APP_VENVS / f".{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / ".complete").exists():
            _build(venv, tar, local, index)
    return venv


def _build(venv: Path, tar: Path, local: list[str], index: list[str]) -> None:
    partial = venv  # built in place (scripts name their python by path): done once
    shutil.rmtree(partial, ignore_errors=True)  # complete once .complete is there
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(tar) as archive:
            archive.extractall(tmp, filter="data")
        subprocess.run([SYSTEM_PYTHON, "-m", "venv", partial], check=True)
        pip = [str(partial / "bin" / "pip"), "install", "--quiet", "--no-cache-dir",
               "--disable-pip-version-check"]
        subprocess.run([*pip, "--no-index", "--find-links", f"{tmp}/wheels", *local],
                       check=True, stdin=subprocess.DEVNULL)
        if index:
            subprocess.run([*pip, *index], check=True, stdin=subprocess.DEVNULL)
    subprocess.run(["chmod", "-R", "a+rX,go-w", str(partial)], check=True)
    (venv / ".complete").touch()


def main() -> int:
    if not SYSTEM_PYTHON.exists():
        print(f"test assets: no {SYSTEM_PYTHON}: the tests that need it skip")
        return 0
    began = time.monotonic()
    tar = system_wheelhouse()
    venvs = [app_venv(), fnud_venv()]
    print(f"test assets: {tar.relative_to(ROOT)}, {', '.join(map(str, venvs))} ready in "
          f"{time.monotonic() - began:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
