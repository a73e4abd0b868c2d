"""Stacks whose app belongs to another user (www-data), with fnud as root: the layout of
the tutorial (the app's user owns the app's directory, its ini or conf and may own its
virtualenv), for the tests that attack fnud as that user.

The app runs from the shared app virtualenv (testkit.assets: Debian's python3, Flask,
uWSGI, gunicorn; root's). ``user_venv`` makes one the app's user owns, whose site
packages it may poison (.pth files), leaning on the shared one for its packages.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

from testkit import assets
from testkit.stackdir import StackDir

APP_USER = "www-data"


def unavailable() -> str:
    """Why these tests cannot run here ('' when they can)."""
    if os.geteuid() != 0:
        return "needs root (fnud as root, the app as www-data)"
    try:
        pwd.getpwnam(APP_USER)
    except KeyError:
        return f"needs a user {APP_USER}"
    if not assets.SYSTEM_PYTHON.exists():
        return f"needs {assets.SYSTEM_PYTHON}"
    return ""


def uid() -> int:
    return pwd.getpwnam(APP_USER).pw_uid


def give(path: Path) -> None:
    """``path`` and everything below it belong to the app's user."""
    for item in [path, *path.rglob("*")] if path.is_dir() else [path]:
        os.chown(item, uid(), uid(), follow_symlinks=False)


def run_as_user(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` as the app's user (the attacker), from /."""
    return subprocess.run(
        argv, user=APP_USER, group=APP_USER, extra_groups=[], cwd="/", text=True,
        capture_output=True, timeout=60, check=False,
    )


class Proof:
    """Where payloads leave a file named ``TAG-UID``: who ran them."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "proof"
        self.dir.mkdir()
        self.dir.chmod(0o1777)

    def shell(self, tag: str) -> str:
        return f"/bin/sh -c 'touch {self.dir}/{tag}-$(id -u)'"

    def python(self, tag: str) -> str:
        return f"open('{self.dir}/{tag}-' + str(__import__('os').getuid()), 'w').close()"

    def uids(self, tag: str) -> set[int]:
        return {int(p.name.rsplit("-", 1)[1]) for p in self.dir.glob(f"{tag}-*")}

    def by_root(self) -> list[str]:
        return sorted(p.name for p in self.dir.iterdir() if p.name.endswith("-0"))


def user_venv(where: Path) -> Path:
    """A virtualenv the app's user owns (it may add .pth files), using the shared app
    venv's packages through a .pth of its own."""
    shared = assets.app_venv()
    where.mkdir()
    give(where)
    venv = where / "venv"
    made = run_as_user([str(assets.SYSTEM_PYTHON), "-m", "venv", "--without-pip", str(venv)])
    assert made.returncode == 0, made.stderr
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    found = list((shared / "lib").glob("python3*/site-packages"))
    assert found, f"no site-packages in {shared}"
    site = next(iter(venv.glob("lib/python3*/site-packages")), venv / "lib" / version)
    (site / "shared.pth").write_text(f"{found[0]}\n")
    give(site / "shared.pth")
    return venv


def uwsgi_stack(stack: StackDir, venv: Path) -> StackDir:
    """``stack`` (make_stack_dir's) with its app and ini in the app's user's directory,
    run by [fnud] user; uWSGI from the shared venv, the app on ``venv``."""
    app = stack.root / "app"
    ini = app / "uwsgi.ini"
    text = stack.ini.read_text().replace("chdir = %dapp", "chdir = %d")
    ini.write_text(text + f"virtualenv = {venv}\n")
    stack.ini.unlink()
    toml = stack.toml.read_text().replace(
        "allow_root = true", f'allow_root = false\nuser = "{APP_USER}"'
    ).replace(
        'ini = "uwsgi.ini"',
        f'ini = "app/uwsgi.ini"\nbinary = "{assets.app_venv()}/bin/uwsgi"',
    )
    stack.toml.write_text(toml)
    give(app)
    return stack


def gunicorn_stack(stack: StackDir, venv: Path) -> StackDir:
    """``stack`` (make_gunicorn_stack_dir's) with its app and conf in the app's user's
    directory, run by [fnud] user with ``venv``'s python."""
    app = stack.root / "app"
    shutil.move(stack.gunicorn_conf, app / "gunicorn.conf.py")
    toml = stack.toml.read_text().replace(
        "allow_root = true", f'allow_root = false\nuser = "{APP_USER}"'
    ).replace(f'python = "{sys.executable}"', f'python = "{venv}/bin/python"').replace(
        'conf = "gunicorn.conf.py"', 'conf = "app/gunicorn.conf.py"'
    )
    stack.toml.write_text(toml)
    give(app)
    return stack
