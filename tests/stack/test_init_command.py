"""`fnud init` as a user runs it, in a subprocess, in temp dirs, on loopback ports picked
free at runtime. Nothing is started here but `nginx -t`, `uwsgi --pyrun` (fnud check's
wheel-trap probe), the app preflight and stand-ins holding ports."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import crossplane
import pytest

from supervisor.adopt import ini_fix, site
from testkit.stackdir import ROOT, free_port

SEED = ROOT / "tests" / "fixtures" / "checks" / "seed_uwsgi.ini"
SEED_INI = Path("/home/flaskproject/uwsgi.ini")


# -- the command -------------------------------------------------------------------------

APP = """\
from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    return "hello"
"""


@dataclass(frozen=True)
class Layout:
    """The tutorial's deployment in a temp dir: app + ini, a Debian-style nginx dir."""

    root: Path
    uwsgi_port: int
    http_port: int

    @property
    def app(self) -> Path:
        return self.root / "app"

    @property
    def ini(self) -> Path:
        return self.app / "uwsgi.ini"

    @property
    def conf_dir(self) -> Path:
        return self.root / "nginx"

    @property
    def site(self) -> Path:
        return self.conf_dir / "sites-enabled" / "mysite"

    @property
    def out(self) -> Path:
        return self.root / "fnud"


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    made = Layout(tmp_path, free_port(), free_port())
    made.app.mkdir()
    (made.app / "manage.py").write_text(APP)
    made.ini.write_text(
        SEED.read_text()
        .replace("/home/flaskproject/", f"{made.app}/")
        .replace("127.0.0.1:5000 ", f"127.0.0.1:{made.uwsgi_port} ")
    )
    made.site.parent.mkdir(parents=True)
    (made.conf_dir / "nginx.conf").write_text("# the distribution's\n")
    shutil.copy("/etc/nginx/uwsgi_params", made.conf_dir / "uwsgi_params")
    made.site.write_text(textwrap.dedent(f"""\
        server {{
            listen 127.0.0.1:{made.http_port};
            server_name localhost;
            location / {{
                include uwsgi_params;
                uwsgi_pass 127.0.0.1:{made.uwsgi_port};
            }}
        }}
    """))
    return made


def fnud(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "supervisor", *args], capture_output=True, text=True,
        timeout=180, stdin=subprocess.DEVNULL, cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def init(layout: Layout, *args: str, site_file: bool = True) -> subprocess.CompletedProcess[str]:
    # as root, the default [fnud] user www-data could not run this test's python (it lives
    # in root's home): the app runs as root here
    user = ["--user", "root"] if os.geteuid() == 0 else []
    site_args = ["--nginx-site", str(layout.site)] if site_file else []
    return fnud(
        "init", "--ini", str(layout.ini), *site_args, "--dir", str(layout.out),
        "--runtime-dir", str(layout.root / "run"), "--log-dir", str(layout.root / "log"),
        *user, *args, cwd=layout.root,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("fnud: "), result.stderr
    return lines[0]


def test_dry_run_prints_everything_and_writes_nothing(layout: Layout) -> None:
    result = init(layout, "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert f"{layout.ini}:7: moved the inline comment '#  项目目录' to its own line" in out
    assert f"{layout.ini}:14: removed 'daemonize = ./log/uwsgi.log'" in out
    for name in ("uwsgi.ini", "nginx.conf", "fnud.toml"):
        assert f"==> {layout.out / name} (would be written) <==" in out
    target = layout.conf_dir / "uwsgi_params"
    assert f"==> {layout.out / 'uwsgi_params'} -> {target} (would be linked) <==" in out
    assert f"    include {layout.site};" in out
    assert f'url = "http://127.0.0.1:{layout.http_port}/"' in out
    assert "dry run: nothing written" in out
    assert not layout.out.exists()


def test_init_writes_what_fnud_check_accepts(layout: Layout) -> None:
    result = init(layout)
    assert result.returncode == 0, result.stdout + result.stderr
    toml_path = layout.out / "fnud.toml"
    assert result.stdout.splitlines()[-4:] == [
        "next:",
        f"  fnud -c {toml_path} check",
        f"  fnud -c {toml_path} start",
        f"  sudo fnud -c {toml_path} systemd-unit --install",
    ]
    link = layout.out / "uwsgi_params"
    assert os.readlink(link) == str(layout.conf_dir / "uwsgi_params")
    assert f"linked {link} -> {layout.conf_dir / 'uwsgi_params'}" in result.stdout
    assert layout.site.read_text().count("include uwsgi_params;") == 1  # unchanged
    check = fnud("-c", str(toml_path), "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "error" not in check.stdout


def test_existing_files_are_not_overwritten(layout: Layout) -> None:
    assert init(layout).returncode == 0
    written = layout.out / "uwsgi.ini"
    written.write_text("; mine\n")
    line = one_error_line(init(layout))
    assert line == f"fnud: {written}: exists: fnud init overwrites nothing without --force"
    assert written.read_text() == "; mine\n"
    dry = init(layout, "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert f"==> {written} (exists: would be overwritten with --force) <==" in dry.stdout
    assert written.read_text() == "; mine\n"
    forced = init(layout, "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert "master = true" in written.read_text()


def test_a_missing_wsgi_file_writes_nothing(layout: Layout) -> None:
    layout.ini.write_text(layout.ini.read_text().replace("manage.py ", "missing.py "))
    result = init(layout)
    assert result.returncode == 1
    assert (f"{layout.ini}:8: error: wsgi-file: {layout.app}/missing.py is not a file"
            in result.stdout), result.stdout
    assert result.stderr.startswith("fnud: 1 error"), result.stderr
    assert not layout.out.exists()


def test_an_app_that_does_not_import_writes_nothing(layout: Layout) -> None:
    (layout.app / "manage.py").write_text("import no_such_module\n")
    result = init(layout)
    assert result.returncode == 1
    assert f"{layout.ini}:8: error: app does not load: " in result.stdout, result.stdout
    assert "No module named 'no_such_module'" in result.stdout
    assert not layout.out.exists()


@pytest.mark.parametrize(("change", "expected"), [
    ("no ini", "fnud: {ini}: --ini: no such file"),
    ("no section", "fnud: {ini}: no options in a [uwsgi] section"),
    ("bad site", "fnud: {site}:7: nginx syntax: unexpected end of file"),
    ("missing include", "fnud: {site}:5: include nothere_params: {conf}/nothere_params does "
     "not exist"),
])
def test_user_errors_are_one_line(layout: Layout, change: str, expected: str) -> None:
    if change == "no ini":
        layout.ini.unlink()
    elif change == "no section":
        layout.ini.write_text("socket = :5000\n")
    elif change == "bad site":
        layout.site.write_text(layout.site.read_text().rstrip().removesuffix("}"))
    else:
        layout.site.write_text(layout.site.read_text().replace("uwsgi_params", "nothere_params"))
    line = one_error_line(init(layout))
    wanted = expected.format(ini=layout.ini, site=layout.site, conf=layout.conf_dir)
    assert line.startswith(wanted), line
    assert not layout.out.exists()


@contextlib.contextmanager
def holding(port: int, name: str, where: Path) -> Iterator[int]:
    """A process called ``name`` listening on 127.0.0.1:``port``; its pid."""
    exe = where / name
    exe.symlink_to(sys.executable)  # the kernel names the process after the link
    script = (
        "import socket, sys, time\n"
        f"s = socket.socket(); s.bind(('127.0.0.1', {port})); s.listen()\n"
        "print('listening', flush=True); time.sleep(120)\n"
    )
    proc = subprocess.Popen([str(exe), "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "listening"
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_a_port_held_by_the_old_uwsgi_is_a_warning(layout: Layout, tmp_path: Path) -> None:
    with holding(layout.uwsgi_port, "uwsgi", tmp_path) as pid:
        result = init(layout, "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (f"{layout.ini}:3: warning: socket = 127.0.0.1:{layout.uwsgi_port} "
            f"(127.0.0.1:{layout.uwsgi_port}): held by the app's old uwsgi (pid {pid}); stop "
            f"it before `fnud start` (uwsgi --stop {layout.app}/uwsgi.pid (or kill -INT {pid}))"
            ) in result.stdout, result.stdout


def test_a_port_held_by_another_program_writes_nothing(layout: Layout, tmp_path: Path) -> None:
    with holding(layout.http_port, "other", tmp_path) as pid:
        result = init(layout)
    assert result.returncode == 1
    assert (f"{layout.site}:2: error: listen 127.0.0.1:{layout.http_port} "
            f"(127.0.0.1:{layout.http_port}): address already in use by pid {pid} (other)"
            ) in result.stdout, result.stdout
    assert not layout.out.exists()


def test_without_a_site_file_nginx_passes_to_the_ini_socket(layout: Layout) -> None:
    result = init(layout, "--listen", f"127.0.0.1:{layout.http_port}", "--health-path",
                  "/", site_file=False)
    assert result.returncode == 0, result.stdout + result.stderr
    conf = (layout.out / "nginx.conf").read_text()
    assert f"        listen 127.0.0.1:{layout.http_port};\n" in conf
    assert f"            uwsgi_pass 127.0.0.1:{layout.uwsgi_port};\n" in conf
    check = fnud("-c", str(layout.out / "fnud.toml"), "check")
    assert check.returncode == 0, check.stdout + check.stderr


def test_fixing_a_fixed_ini_changes_nothing() -> None:
    once = ini_fix.fix_ini(SEED.read_text(), ini_fix.Source(SEED_INI, debian_uwsgi=True))
    twice = ini_fix.fix_ini(once.text, ini_fix.Source(Path("/srv/fnud/uwsgi.ini"), True))
    assert twice.edits == ()
    assert twice.text == once.text.replace(str(SEED_INI), "/srv/fnud/uwsgi.ini")


def test_an_unreadable_include_is_named(tmp_path: Path) -> None:
    payload = crossplane.parse(str(tmp_path / "gone"), single=True, check_ctx=False)
    problem = site.first_error(payload)
    assert str(problem) == f"{tmp_path / 'gone'}: cannot read: No such file or directory"


def test_a_health_path_the_app_does_not_answer_writes_nothing(layout: Layout) -> None:
    result = init(layout, "--health-path", "/nothere")
    assert result.returncode == 1
    assert "smoke check GET /nothere answered 404" in result.stdout, result.stdout
    assert "--health-path names a path the app answers with 2xx/3xx" in result.stdout
    assert not layout.out.exists()
