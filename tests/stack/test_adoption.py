"""Adopting a tutorial deployment as the README says: the wheel from `make dist` in a fresh
virtualenv made from Debian's /usr/bin/python3 (not the project's, not editable), then the
README's "Adopt your app" steps, taken from the README and run as written but for paths
and ports: the app answers through nginx, a reload under load fails nothing, and `fnud
stop` leaves nothing.

The tutorial's files are laid out in a temp dir as the seed has them (its uwsgi.ini
verbatim, inline comments and all, paths rewritten into the temp dir). The wheels of
fnud's dependencies (uWSGI compiled for /usr/bin/python3) come from the fleet test bed's
wheelhouse, built once and cached, instead of PyPI.
"""

from __future__ import annotations

import atexit
import os
import re
import shlex
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from testkit import assets, docblocks
from testkit.load import Load
from testkit.stackdir import ROOT, assert_no_leftovers, free_port

README = ROOT / "README.md"
SYSTEM_PYTHON = assets.SYSTEM_PYTHON
SEED_INI = ROOT / "tests" / "fixtures" / "checks" / "seed_uwsgi.ini"
APP = '''from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    return "hello from the tutorial app\\n"
'''
#: commands of the README that cannot run on a test machine, and why
SKIPPED = {
    "apt-get install": "the Debian packages are installed already (make test)",
    "ln -s /opt/fnud/bin/fnud /usr/local/bin/fnud": "the venv's bin is on PATH instead",
    "systemctl": "no systemd here: the old nginx is stopped by the test, fnud by fnud stop",
    "uwsgi --stop": "the seed's ini cannot start uWSGI as written: no old uWSGI runs",
}


@dataclass
class Tutorial:
    root: Path
    http_port: int
    app_port: int
    wheels: Path  # the dependencies' wheels (PIP_FIND_LINKS)
    wheel: Path  # fnud's, from make dist

    @property
    def venv(self) -> Path:
        return self.root / "opt" / "fnud"

    @property
    def home(self) -> Path:
        return self.root / "home" / "flaskproject"

    def substitute(self, command: str) -> str:
        """A README command as it runs here: paths under the temp dir, no sudo (one pass:
        a substituted path is never substituted again)."""
        table = {
            "/opt/fnud": str(self.venv), "/home/flaskproject": str(self.home),
            "/etc/nginx": str(self.root / "etc" / "nginx"),
            "--dir /etc/fnud": f"--dir {self.root}/etc/fnud --runtime-dir {self.root}/run"
                               f" --log-dir {self.root}/log",
            "/etc/fnud": str(self.root / "etc" / "fnud"),
            "python3 -m venv": f"{SYSTEM_PYTHON} -m venv",
            "systemd-unit --install": f"systemd-unit --install --unit-path {self.root}/unit",
            '"./fnud-<version>-py3-none-any.whl': f'"{self.wheel}',
            "./fnud-*.whl": str(self.wheel),
        }
        pattern = "|".join(re.escape(k) for k in sorted(table, key=len, reverse=True))
        return re.sub(pattern, lambda m: table[m.group(0)], command.removeprefix("sudo "))

    def run(self, command: str, readme: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``command`` (one of the README's: substituted first) as a user would."""
        env = {
            **os.environ, "PATH": f"{self.venv}/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(self.wheels),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
        env.pop("PYTHONPATH", None)
        env.pop("VIRTUAL_ENV", None)
        return subprocess.run(
            self.substitute(command) if readme else command, shell=True, cwd=self.root,
            env=env, capture_output=True,
            text=True, timeout=600, stdin=subprocess.DEVNULL,
        )


def wheelhouse(into: Path) -> Path:
    """The dependencies' wheels for /usr/bin/python3 (built before the run by make test)."""
    with tarfile.open(assets.system_wheelhouse()) as archive:
        archive.extractall(into, filter="data")
    for own in (into / "wheels").glob("fnud-*.whl"):
        own.unlink()  # fnud's comes from make dist
    return into / "wheels"


def lay_out(root: Path, http_port: int, app_port: int) -> None:
    home = root / "home" / "flaskproject"
    (home / "log").mkdir(parents=True)
    (home / "manage.py").write_text(APP)
    ini = SEED_INI.read_text().replace("127.0.0.1:5000", f"127.0.0.1:{app_port}")
    ini = ini.replace("/home/flaskproject/", f"{home}/").replace("127.0.0.1:9191",
                                                                  f"127.0.0.1:{free_port()}")
    (home / "uwsgi.ini").write_text(ini.replace("/opt/mt-search", str(root / "opt" / "mt")))
    nginx = root / "etc" / "nginx"
    (nginx / "sites-enabled").mkdir(parents=True)
    (nginx / "nginx.conf").write_text("events {}\nhttp { include sites-enabled/*; }\n")
    (nginx / "uwsgi_params").write_text(Path("/etc/nginx/uwsgi_params").read_text())
    (nginx / "sites-enabled" / "flaskproject").write_text(
        f"server {{\n    listen {http_port};\n    server_name _;\n"
        f"    location / {{\n        include uwsgi_params;\n"
        f"        uwsgi_pass 127.0.0.1:{app_port};\n    }}\n}}\n"
    )


@pytest.fixture
def tutorial() -> Iterator[Tutorial]:
    if not SYSTEM_PYTHON.exists() or not Path("/etc/nginx/uwsgi_params").exists():
        pytest.skip("needs Debian's python3 and nginx")
    root = Path(tempfile.mkdtemp(prefix="fnud-adopt-"))
    root.chmod(0o755)  # the app's user (www-data) reads the app, as on a server
    try:
        made = Tutorial(root, free_port(), free_port(), wheelhouse(root / "wheelhouse"),
                        Path())
        lay_out(root, made.http_port, made.app_port)
        yield made
        made.run(f"fnud -c {root}/etc/fnud/fnud.toml stop", readme=False)
        assert_no_leftovers([root])
    finally:
        # thousands of venv files: removed when the test process ends, outside the
        # test's time budget
        atexit.register(shutil.rmtree, root, ignore_errors=True)


def make_dist() -> Path:
    """The README's `make dist`, run as written in the checkout."""
    (command,) = [c for b in docblocks.section(README, "Install on Debian 12", ("sh",))
                  for c in b.commands()]
    subprocess.run(command, shell=True, cwd=ROOT, check=True, capture_output=True,
                   timeout=300)
    (wheel,) = (ROOT / "dist").glob("fnud-*-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {"supervisor/web/page.html", "supervisor/py.typed"} <= names
    assert not any(name.startswith(("tests/", "testkit/")) for name in names)
    return wheel


def readme_commands(section: str) -> list[str]:
    out = []
    for block in docblocks.section(README, section, ("console",)):
        out += [c for c in block.commands() if not any(s in c for s in SKIPPED)]
    return out


def test_adopt_the_tutorials_app_as_the_readme_says(tutorial: Tutorial) -> None:
    tutorial.wheel = make_dist()
    install = readme_commands("Install on Debian 12")
    assert any("pip install" in c and "[uwsgi]" in c for c in install)
    for command in install:
        if "uwsgi-core" in tutorial.substitute(command) or (
            "pip install" in command and "[uwsgi]" not in command
        ):
            continue  # the Debian-uWSGI alternative: this host compiles uWSGI
        result = tutorial.run(command)
        assert result.returncode == 0, f"{command}: {result.stderr}"
    assert tutorial.run("/opt/fnud/bin/fnud --version").stdout.startswith("fnud, version ")
    # the app's own virtualenv, as the tutorial made it; Flask goes in with fnud's pip
    # (ensurepip, pip's own install into a venv, costs more than the rest of this test)
    venv = tutorial.home / "venv"
    subprocess.run([SYSTEM_PYTHON, "-m", "venv", "--without-pip", venv], check=True)
    flask = tutorial.run(
        f"{tutorial.venv}/bin/pip --python {venv}/bin/python install --quiet flask",
        readme=False,
    )
    assert flask.returncode == 0, flask.stderr
    assert tutorial.run(f"{venv}/bin/python -c 'import flask'", readme=False).returncode == 0
    adopt(tutorial, readme_commands("Adopt your app"))


def adopt(tutorial: Tutorial, commands: list[str]) -> None:
    toml = tutorial.root / "etc" / "fnud" / "fnud.toml"
    url = f"http://127.0.0.1:{tutorial.http_port}/"
    for command in commands:
        if command.endswith(" stop"):
            reload_under_load(tutorial, url, toml)
        result = tutorial.run(command)
        assert result.returncode == 0, f"{command}:\n{result.stdout}{result.stderr}"
        if " init " in command:
            assert "uwsgi.ini:" in result.stdout and "daemonize" in result.stdout
        if command.endswith(" start"):
            assert result.stdout.startswith("fnud started"), result.stdout
            status = tutorial.run(f"fnud -c {toml} status", readme=False)
            assert status.returncode == 0, status.stdout
    unit = (tutorial.root / "unit").read_text()
    assert f"-c {toml}" in unit and str(tutorial.venv / "bin" / "fnud") in unit


def reload_under_load(tutorial: Tutorial, url: str, toml: Path) -> None:
    """Before the README's stop: the app answers through nginx, and a reload under load
    fails nothing (settle cut to 1 s: the reload's switch and the old generation's stop
    are what this watches, not the settle's length)."""
    toml.write_text(toml.read_text() + "\n[reload]\nsettle = 1.0\n")
    with Load(url, concurrency=4) as load:
        load.wait_requests(50)
        reload = tutorial.run(f"fnud -c {toml} reload", readme=False)
        assert reload.returncode == 0, reload.stdout + reload.stderr
        load.wait_requests(50)
        outcome = load.stop()
    assert outcome.failures == 0, outcome.summary()
    assert set(outcome.bodies) == {b"hello from the tutorial app\n"}
    status = tutorial.run(f"fnud -c {shlex.quote(str(toml))} status", readme=False)
    assert status.returncode == 0, status.stdout
