"""The wheelhouse the controller builds for hosts that reach no registry.

``pip wheel`` with the hosts' interpreter (uWSGI compiles against it: a uwsgi wheel built
for another Python fails every app import, so never from pip's cache), once per
interpreter and dependency list; fnud's own wheel once per source tree. Both go into one
tar with fixed timestamps, so the role's copy of it changes only when a wheel does.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

from netns import FleetError


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
        h.update(b"\0")
    return h.hexdigest()[:16]


def _source_digest(repo: Path) -> str:
    files = [
        f for f in sorted((repo / "supervisor").rglob("*"))
        if f.is_file() and "__pycache__" not in f.parts
    ]
    files.append(repo / "pyproject.toml")
    return _digest(*(str(f.relative_to(repo)).encode() + f.read_bytes() for f in files))


def _pip_wheel(python: str, args: list[str], into: Path) -> None:
    tmp = into.with_name(into.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    env = {**os.environ, "SOURCE_DATE_EPOCH": "315532800", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    result = subprocess.run(
        [python, "-m", "pip", "wheel", "--quiet", "--no-cache-dir", "-w", str(tmp), *args],
        capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines() or ["failed"]
        raise FleetError(f"pip wheel {' '.join(args)}: {lines[-1]}")
    shutil.rmtree(into, ignore_errors=True)
    tmp.rename(into)


def build(repo: Path, python: str, cache: Path) -> Path:
    """Wheels for fnud and everything it needs (uWSGI, Flask ...): a tar in ``cache``."""
    version = subprocess.run(
        [python, "-c", "import sys; print(sys.version)"],
        capture_output=True, text=True, check=True,
    ).stdout
    deps_key = _digest(python.encode(), version.encode(), (repo / "pyproject.toml").read_bytes())
    deps = cache / f"deps-{deps_key}"
    if not deps.exists():
        _pip_wheel(python, [f"{repo}[uwsgi]"], deps)  # fnud's dependencies, uwsgi compiled
        for wheel in deps.glob("fnud-*.whl"):
            wheel.unlink()
    own = cache / f"fnud-{_source_digest(repo)}-{deps_key}"
    if not own.exists():
        _pip_wheel(python, ["--no-deps", str(repo)], own)
    tar = cache / f"wheelhouse-{own.name}.tar"
    if not tar.exists():
        _write_tar(tar, sorted(deps.iterdir()) + sorted(own.iterdir()))
    return tar


def _write_tar(tar: Path, wheels: list[Path]) -> None:
    tmp = tar.with_suffix(".partial")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as out:
        for wheel in wheels:
            info = tarfile.TarInfo(f"wheels/{wheel.name}")
            data = wheel.read_bytes()
            info.size, info.mtime, info.mode = len(data), 315532800, 0o644
            out.addfile(info, io.BytesIO(data))
    tmp.rename(tar)
