"""Attacks by the app's user on fnud running as root: each is tried for real, as
www-data against a stack whose app directory, ini or conf and (where it matters)
virtualenv that user owns, and each test asserts it got nothing (no file written by
uid 0, no payload run by root, the daemon still answering). Payloads leave a file named
TAG-UID in a proof directory; a control payload shows they ran at all.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from testkit import appuser, stackfiles
from testkit.appuser import Proof
from testkit.stackdir import StackDir, wait_for

_WHY = appuser.unavailable()
pytestmark = [pytest.mark.skipif(bool(_WHY), reason=_WHY or "runs")]


Made = tuple[StackDir, Proof, Path]  # the stack, its proof dir, the user's venv


def _as_user(
    factory: Callable[..., StackDir], convert: Callable[[StackDir, Path], StackDir]
) -> Callable[..., Made]:
    def make(**kwargs: object) -> Made:
        stack = factory(**kwargs)
        venv = appuser.user_venv(stack.root / "home")
        return convert(stack, venv), Proof(stack.root), venv

    return make


@pytest.fixture
def uwsgi_as_user(stack_factory: Callable[..., StackDir]) -> Callable[..., Made]:
    return _as_user(stack_factory, appuser.uwsgi_stack)


@pytest.fixture
def gunicorn_as_user(gunicorn_factory: Callable[..., StackDir]) -> Callable[..., Made]:
    return _as_user(gunicorn_factory, appuser.gunicorn_stack)


def uids_of(stack: StackDir) -> dict[str, set[int]]:
    """{kind of process: the real uids it runs as}, for every process of the stack."""
    out: dict[str, set[int]] = {}
    for proc in stackfiles.processes_under([stack.root]):
        try:
            cmdline = " ".join(proc.cmdline())
            uid = proc.uids().real
        except psutil.Error:
            continue
        if "supervisor" in cmdline and "fnud.toml" in cmdline:
            kind = "fnud"
        elif cmdline.startswith("nginx: master"):
            kind = "nginx master"
        elif cmdline.startswith("nginx: worker"):
            kind = "nginx worker"
        else:
            kind = "app"  # masters, workers, the warm parent
        out.setdefault(kind, set()).add(uid)
    return out


def pth(venv: Path, proof: Proof, tag: str) -> None:
    """A .pth line the interpreter runs at start-up (site.py), in the user's venv."""
    site = next(venv.glob("lib/python3*/site-packages"))
    (site / f"{tag}.pth").write_text(f"import os; {proof.python(tag)}\n")
    appuser.give(site / f"{tag}.pth")


def test_every_process_of_a_uwsgi_stack_runs_as_the_apps_user(
    uwsgi_as_user: Callable[..., Made],
) -> None:
    stack, _, _ = uwsgi_as_user()
    stack.start()
    assert stack.body() == b"Hello from fnud\n"
    www = appuser.uid()
    kinds = uids_of(stack)
    assert kinds["app"] == {www}, kinds  # masters, workers, warm parent
    assert kinds["nginx worker"] == {www} and kinds["nginx master"] == {0}, kinds
    rendered = stack.run / "uwsgi-1.ini"
    info = rendered.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == www  # env secrets
    result = stack.fnud("reload")
    assert result.returncode == 0, result.stdout + result.stderr
    assert uids_of(stack)["app"] == {www}


def test_the_users_ini_and_venv_run_nothing_as_root(
    uwsgi_as_user: Callable[..., Made],
) -> None:
    """exec-as-root, hook-as-root, master-as-root, @(exec://) and a .pth in the venv:
    uWSGI ran them as www-data (or not at all), at start, at a reload and in fnud check."""
    stack, proof, venv = uwsgi_as_user()
    ini = stack.root / "app" / "uwsgi.ini"
    ini.write_text(ini.read_text() + "\n".join([
        f"exec-as-root = {proof.shell('exec-as-root')}",
        f"hook-as-root = exec:{proof.shell('hook-as-root')}",
        "master-as-root = true",
        f"exec-pre-app = {proof.shell('control')}",
        f"env = FNUD_ATTACK=@(exec://{proof.shell('at-exec')})",
        "",
    ]))
    pth(venv, proof, "pth")
    stack.start()
    assert stack.body() == b"Hello from fnud\n"
    assert proof.uids("control") == {appuser.uid()}  # the ini's hooks did run, as www-data
    assert proof.uids("pth") == {appuser.uid()}  # preflight and master read the .pth
    result = stack.fnud("reload")
    assert result.returncode == 0, result.stdout + result.stderr
    check = stack.fnud("check")
    assert "exec-as-root' would run as root" in check.stdout, check.stdout
    assert proof.by_root() == []


def test_a_pidfile_link_planted_by_the_user_writes_nothing_of_roots(
    uwsgi_as_user: Callable[..., Made],
) -> None:
    stack, _, _ = uwsgi_as_user()
    victim = stack.root / "victim"  # root's, in root's directory
    victim.write_text("precious\n")
    link = stack.root / "app" / "uwsgi.pid"
    link.symlink_to(victim)
    os.chown(link, appuser.uid(), appuser.uid(), follow_symlinks=False)
    ini = stack.root / "app" / "uwsgi.ini"
    ini.write_text(ini.read_text() + "pidfile = %duwsgi.pid\nsafe-pidfile = %dsafe.pid\n")
    stack.fnud("start")  # uWSGI as www-data cannot open root's file: it may not start
    assert victim.read_text() == "precious\n"
    assert victim.stat().st_uid == 0


def test_an_unknown_user_is_refused_and_nothing_of_the_app_runs(
    uwsgi_as_user: Callable[..., Made],
) -> None:
    stack, proof, venv = uwsgi_as_user()
    pth(venv, proof, "pth")
    stack.toml.write_text(stack.toml.read_text().replace(
        f'user = "{appuser.APP_USER}"', 'user = "fnud-no-such-user"'
    ))
    result = stack.fnud("start")
    assert result.returncode != 0
    assert "no user named 'fnud-no-such-user'" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert proof.uids("pth") == set()  # nothing imported the app, as anyone
    check = stack.fnud("check")
    assert check.returncode != 0 and proof.uids("pth") == set()


def test_files_the_user_plants_in_its_corner_freeze_nothing(
    uwsgi_as_user: Callable[..., Made],
) -> None:
    """A FIFO where the stats socket was, a link where the fifo was: status still
    answers, nothing of root's is written, the stack stops."""
    stack, _, _ = uwsgi_as_user()
    stack.start()
    corner = stack.run / "uwsgi"
    stats, fifo = corner / "uwsgi-stats-1.sock", corner / "uwsgi-1.fifo"
    victim = stack.root / "victim"
    victim.write_text("precious\n")
    planted = appuser.run_as_user(["/bin/sh", "-c", (
        f"rm -f {stats} {fifo} && mkfifo {stats} && ln -s {victim} {fifo}"
    )])
    assert planted.returncode == 0, planted.stderr
    status = stack.fnud("status", "--json", timeout=30)
    assert status.returncode == 0, status.stdout + status.stderr
    stop = stack.fnud("stop", timeout=60)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert victim.read_text() == "precious\n"


def unix_socket(stack: StackDir, where: str) -> Path:
    """The app on a unix socket at app/``where`` (the user's directory), nginx on it."""
    path = stack.root / "app" / where
    ini = stack.root / "app" / "uwsgi.ini"
    ini.write_text(ini.read_text().replace(
        f"socket = 127.0.0.1:{stack.uwsgi_port}", f"socket = {path}\nchmod-socket = 660"
    ))
    stack.nginx_conf.write_text(stack.nginx_conf.read_text().replace(
        f"uwsgi_pass 127.0.0.1:{stack.uwsgi_port}", f"uwsgi_pass unix:{path}"
    ))
    return path


def test_a_unix_socket_in_the_users_directory_is_bound_by_the_user(
    uwsgi_as_user: Callable[..., Made],
) -> None:
    stack, _, _ = uwsgi_as_user()
    (stack.root / "app" / "run").mkdir()
    appuser.give(stack.root / "app" / "run")
    path = unix_socket(stack, "run/app.sock")
    stack.start()
    assert stack.body() == b"Hello from fnud\n"
    info = path.lstat()
    assert stat.S_ISSOCK(info.st_mode) and info.st_uid == appuser.uid()
    assert stat.S_IMODE(info.st_mode) == 0o660


def test_a_socket_path_through_a_planted_link_creates_nothing_of_roots(
    uwsgi_as_user: Callable[..., Made],
) -> None:
    """app/run -> a directory of root's: fnud does not bind, chmod or chown there."""
    stack, _, _ = uwsgi_as_user(start_timeout=5.0)
    victim = stack.root / "victim"
    victim.mkdir()
    (victim / "passwd").write_text("root:x:0:0\n")
    (stack.root / "app" / "run").symlink_to(victim)
    os.chown(stack.root / "app" / "run", appuser.uid(), appuser.uid(), follow_symlinks=False)
    unix_socket(stack, "run/passwd.sock")
    result = stack.fnud("start")
    assert result.returncode != 0
    assert "Permission denied" in result.stdout + result.stderr
    assert sorted(p.name for p in victim.iterdir()) == ["passwd"]
    assert (victim / "passwd").stat().st_mode & 0o777 == 0o644


def test_every_process_of_a_gunicorn_stack_runs_as_the_user_with_its_groups(
    gunicorn_as_user: Callable[..., Made],
) -> None:
    """The arbiter too: the user's conf, preload_app and the venv's .pth run in it."""
    stack, proof, venv = gunicorn_as_user()
    conf = stack.root / "app" / "gunicorn.conf.py"
    conf.write_text(conf.read_text() + f"{proof.python('conf')}\npreload_app = True\n")
    app = stack.root / "app" / "app.py"
    app.write_text(app.read_text() + f"\n{proof.python('import')}\n")
    pth(venv, proof, "pth")
    stack.start()
    assert stack.body() == b"Hello from fnud\n"
    www = appuser.uid()
    kinds = uids_of(stack)
    assert kinds["app"] == {www} and kinds["nginx master"] == {0}, kinds
    expected = set(os.getgrouplist(appuser.APP_USER, www))
    for pid in stack.worker_pids():
        groups = next(
            line.split()[1:] for line in Path(f"/proc/{pid}/status").read_text().splitlines()
            if line.startswith("Groups:")
        )
        assert {int(g) for g in groups} <= expected, groups  # not root's groups
    for tag in ("conf", "import", "pth"):
        assert proof.uids(tag) == {www}, tag
    assert proof.by_root() == []


def test_a_gunicorn_package_in_the_app_dir_never_runs_as_root(
    gunicorn_as_user: Callable[..., Made],
) -> None:
    """`python -m gunicorn` in the app's directory imports a gunicorn/ found there first:
    it runs as the app's user, whatever it does."""
    stack, proof, _ = gunicorn_as_user(start_timeout=5.0)
    fake = stack.root / "app" / "gunicorn"
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "__main__.py").write_text(proof.python("main") + "\n")
    appuser.give(fake)
    stack.fnud("start")  # the fake is no server: the start fails
    wait_for(lambda: proof.uids("main"), message="the planted __main__ to run")
    assert proof.uids("main") == {appuser.uid()}
    assert proof.by_root() == []


def test_init_writes_nothing_into_a_directory_the_user_may_write(
    uwsgi_as_user: Callable[..., Made],
) -> None:
    """`sudo fnud init --dir D` with D the app's user's: refused, nothing written there
    (fnud as root would trust what it finds in D later)."""
    stack, _, _ = uwsgi_as_user()
    target = stack.root / "app" / "fnud"
    target.mkdir()
    appuser.give(target)
    result = stack.fnud(
        "init", "--ini", str(stack.root / "app" / "uwsgi.ini"), "--dir", str(target),
        "--user", appuser.APP_USER,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{target}: " in result.stderr and "--dir /etc/fnud" in result.stderr
    assert list(target.iterdir()) == []


def test_a_config_file_the_user_may_write_is_refused_before_anything_runs(
    uwsgi_as_user: Callable[..., Made],
) -> None:
    """nginx.conf includes a file in the app's directory: nginx's root master would run
    what that user writes there. start and check refuse, naming the file and the fix."""
    stack, proof, venv = uwsgi_as_user()
    pth(venv, proof, "pth")
    included = stack.root / "app" / "extra.conf"
    included.write_text("# the app's user may write this\n")
    appuser.give(included)
    stack.nginx_conf.write_text(stack.nginx_conf.read_text().replace(
        "http {", f"http {{\n    include {included};", 1
    ))
    result = stack.fnud("start")
    assert result.returncode != 0
    owned = f"directory {included.parent} is owned by uid {appuser.uid()}"
    assert f"{included}: error: {owned}" in result.stderr, result.stderr
    assert f"chown root:root {included.parent}" in result.stderr
    assert "Traceback" not in result.stderr
    assert proof.uids("pth") == set()  # refused before the app was imported
    check = stack.fnud("check")
    assert check.returncode != 0 and f"{included}: error: {owned}" in check.stdout


def test_a_conf_linked_to_a_file_of_roots_is_not_read(
    gunicorn_as_user: Callable[..., Made],
) -> None:
    """gunicorn.conf.py -> a secret of root's: fnud would copy it into the pinned conf the
    app's user reads. It refuses in one line instead, and copies nothing."""
    stack, _, _ = gunicorn_as_user()
    secret = stack.root / "secret"
    secret.write_text("SECRET = 'root only'\n")
    secret.chmod(0o600)
    conf = stack.root / "app" / "gunicorn.conf.py"
    conf.unlink()
    conf.symlink_to(secret)
    os.chown(conf, appuser.uid(), appuser.uid(), follow_symlinks=False)
    result = stack.fnud("start")
    assert result.returncode != 0
    assert f"{conf}: cannot read" in result.stdout + result.stderr, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    copies = [p for p in stack.run.rglob("*") if p.is_file() and "root only" in p.read_text()]
    assert copies == []
