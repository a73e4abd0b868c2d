"""`fnud check`: one test per rule, each a clean config with exactly one fault injected.

Nothing is started here except `nginx -t`; ports are free ones picked at runtime.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from supervisor.checks import runner as checks
from supervisor.checks.finding import Finding
from supervisor.common import ports
from testkit.stackdir import ROOT, StackDir, make_stack_dir

FIXTURES = Path(__file__).parent.parent / "fixtures" / "checks"


@pytest.fixture
def stack() -> Iterator[StackDir]:
    made = make_stack_dir()
    yield made
    shutil.rmtree(made.root, ignore_errors=True)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def add_ini(stack: StackDir, *lines: str) -> None:
    with stack.ini.open("a") as out:
        out.write("".join(line + "\n" for line in lines))


def line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def formatted(found: list[Finding]) -> str:
    return "\n".join(f.format() for f in found) or "(none)"


def run(stack: StackDir, **kwargs: bool) -> list[Finding]:
    return checks.check_all(stack.toml, **kwargs)


def single(stack: StackDir, **kwargs: bool) -> Finding:
    found = run(stack, **kwargs)
    assert len(found) == 1, formatted(found)
    return found[0]


def assert_finding(
    finding: Finding, path: Path, line: int, severity: str, *words: str
) -> None:
    assert (finding.path, finding.line, finding.severity) == (str(path), line, severity), (
        finding.format()
    )
    for word in words:
        assert word in finding.message, finding.format()
    assert finding.hint, finding.format()


def listening(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return sock


# -- a clean config ----------------------------------------------------------------------


def test_clean_config_has_no_findings(stack: StackDir) -> None:
    assert run(stack) == []


def test_check_leaves_no_prefix_behind(stack: StackDir) -> None:
    prefix = stack.run.with_name("run-nginx")  # <runtime_dir>-nginx
    assert run(stack) == []
    assert not prefix.exists()  # nginx -t ran under it, created for it and removed


def test_check_removes_only_what_it_created_in_an_existing_prefix(stack: StackDir) -> None:
    prefix = stack.run.with_name("run-nginx")  # <runtime_dir>-nginx
    prefix.mkdir(parents=True)
    (prefix / "mine").write_text("kept")
    assert run(stack) == []
    assert sorted(p.name for p in prefix.iterdir()) == ["mine"]


def test_check_all_works_inside_an_event_loop(stack: StackDir) -> None:
    edit(stack.nginx_conf, "access_log off;", "access_log off;\n    foo bar;")

    async def inside() -> list[Finding]:
        return checks.check_all(stack.toml)

    found = asyncio.run(inside())
    assert [f.line for f in found] == [line_of(stack.nginx_conf, "foo bar")], formatted(found)


# -- uwsgi.ini ---------------------------------------------------------------------------


@pytest.mark.parametrize("comment", ["# project dir", "; project dir", "#项目目录"])
def test_inline_comment(stack: StackDir, comment: str) -> None:
    edit(stack.ini, "chdir = %dapp", f"chdir = %dapp   {comment}")
    line = line_of(stack.ini, "chdir =")
    assert_finding(single(stack), stack.ini, line, "error", "inline comment", "chdir")


def test_hash_inside_a_value_is_not_a_comment(stack: StackDir) -> None:
    add_ini(stack, "env = HOME_URL=http://127.0.0.1/#top", "env = RATIO=50%;x")
    assert run(stack) == []


@pytest.mark.parametrize("key", ["daemonize", "daemonize2"])
def test_daemonize(stack: StackDir, key: str) -> None:
    add_ini(stack, f"{key} = %duwsgi.log")
    finding = single(stack)
    assert_finding(finding, stack.ini, line_of(stack.ini, f"{key} ="), "error", key, "detaches")
    assert "comments it out" in finding.hint


@pytest.mark.parametrize("key", ["master", "lazy-apps"])
def test_chain_reload_needs_master_and_lazy_apps(
    stack_factory: Callable[..., StackDir], key: str
) -> None:
    stack = stack_factory(reload_mode="chain")
    edit(stack.ini, f"{key} = true\n", "")
    line = line_of(stack.ini, "[uwsgi]")
    assert_finding(single(stack), stack.ini, line, "error", f"no '{key}'")


@pytest.mark.parametrize("value", ["false", "0", "no", "Off"])
def test_chain_reload_with_lazy_apps_off(
    stack_factory: Callable[..., StackDir], value: str
) -> None:
    stack = stack_factory(reload_mode="chain")
    edit(stack.ini, "lazy-apps = true", f"lazy-apps = {value}")
    line = line_of(stack.ini, "lazy-apps")
    assert_finding(single(stack), stack.ini, line, "error", f"'lazy-apps = {value}'", "old code")


def test_what_cannot_be_held_is_named_and_falls_back_to_chain_mode(stack: StackDir) -> None:
    edit(stack.ini, "lazy-apps = false", "lazy-apps = true")  # chain mode needs it
    add_ini(stack, "shutdown-sockets = true")
    line = line_of(stack.ini, "shutdown-sockets")
    assert_finding(single(stack), stack.ini, line, "warning", "shutdown-sockets",
                   "cannot share a held socket", "fall back to chain mode")


def test_lazy_apps_with_in_place_edits_is_a_warning_in_generation_mode(
    stack: StackDir,
) -> None:
    edit(stack.ini, "lazy-apps = false", "lazy-apps = true")
    line = line_of(stack.ini, "lazy-apps")
    finding = single(stack)
    assert_finding(finding, stack.ini, line, "warning", "respawned worker", "in-place edit")
    assert "symlink" in finding.hint


def test_many_lazy_workers_are_told_what_preloading_saves(stack: StackDir) -> None:
    edit(stack.ini, "lazy-apps = false", "lazy-apps = true")
    edit(stack.ini, "processes = 3", "processes = 16")
    line = line_of(stack.ini, "lazy-apps")
    found = [f for f in run(stack) if "16 workers" in f.message]
    assert len(found) == 1
    assert_finding(found[0], stack.ini, line, "warning", "imports the app 16 times at once",
                   "16 workers on 2 cores")
    assert "drop lazy-apps" in found[0].hint


def test_lazy_apps_through_a_release_symlink_is_fine(stack: StackDir) -> None:
    edit(stack.ini, "lazy-apps = false", "lazy-apps = true")
    (stack.root / "current").symlink_to("app")
    edit(stack.ini, "chdir = %dapp", "chdir = %dcurrent")
    assert run(stack) == []


@pytest.mark.parametrize(
    ("key", "value"), [("touch-chain-reload", "true"), ("touch-reload", "yes")]
)
def test_touch_option_with_a_boolean(stack: StackDir, key: str, value: str) -> None:
    add_ini(stack, f"{key} = {value}")
    line = line_of(stack.ini, key)
    assert_finding(single(stack), stack.ini, line, "warning", key, "not a switch")


def test_touch_option_with_a_file_is_fine(stack: StackDir) -> None:
    add_ini(stack, "touch-chain-reload = %dreload.trigger")
    assert run(stack) == []


@pytest.mark.parametrize("value", ["127.0.0.1:9191", ":9191", "127.0.0.1:9191   ; stats"])
def test_stats_on_tcp(stack: StackDir, value: str) -> None:
    add_ini(stack, f"stats = {value}")
    found = [f for f in run(stack) if "inline comment" not in f.message]
    assert len(found) == 1, formatted(found)
    line = line_of(stack.ini, "stats =")
    assert_finding(found[0], stack.ini, line, "warning", "stats", "TCP", "every local user")
    assert "private runtime dir" in found[0].hint


def test_stats_on_a_unix_socket_is_fine(stack: StackDir) -> None:
    add_ini(stack, "stats = %dstats.sock")
    assert run(stack) == []


def test_chdir_missing(stack: StackDir) -> None:
    edit(stack.ini, "chdir = %dapp", "chdir = %dnowhere")
    finding = single(stack)
    line = line_of(stack.ini, "chdir =")
    assert_finding(finding, stack.ini, line, "error", "chdir", str(stack.root / "nowhere"))


def test_relative_chdir_is_relative_to_the_ini(stack: StackDir) -> None:
    edit(stack.ini, "chdir = %dapp", "chdir = app")
    assert run(stack) == []


def test_wsgi_file_is_relative_to_chdir(stack: StackDir) -> None:
    edit(stack.ini, "module = app", "wsgi-file = app.py")
    assert run(stack) == []
    edit(stack.ini, "wsgi-file = app.py", "wsgi-file = nope.py")
    finding = single(stack)
    line = line_of(stack.ini, "wsgi-file")
    assert_finding(finding, stack.ini, line, "error", "wsgi-file", str(stack.root / "app/nope.py"))


@pytest.mark.parametrize("key", ["virtualenv", "home", "venv"])
def test_virtualenv_missing(stack: StackDir, key: str) -> None:
    add_ini(stack, f"{key} = venv")
    line = line_of(stack.ini, f"{key} =")
    assert_finding(single(stack), stack.ini, line, "error", key, str(stack.root / "app/venv"))
    (stack.root / "app" / "venv").mkdir()
    assert run(stack) == []


def test_pythonpath_missing(stack: StackDir) -> None:
    add_ini(stack, "pythonpath = %dlib")
    line = line_of(stack.ini, "pythonpath")
    assert_finding(single(stack), stack.ini, line, "error", "pythonpath", str(stack.root / "lib"))


def test_unresolvable_placeholders_are_not_reported(stack: StackDir) -> None:
    add_ini(
        stack,
        "pythonpath = $(FNUD_CHECK_SURELY_UNSET)/lib",
        "pythonpath = @(%dpythonpath.txt)",
        "pythonpath = %(not_an_option)/lib",
        "pythonpath = %t/lib",
        "pythonpath = %dsrc/*.egg",
        "virtualenv = %(_)",
    )
    assert run(stack) == []


def test_resolvable_placeholders_are_resolved(
    stack: StackDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FNUD_CHECK_BASE", str(stack.root))
    add_ini(stack, "base = $(FNUD_CHECK_BASE)/nowhere", "pythonpath = %(base)/lib")
    assert_finding(
        single(stack), stack.ini, line_of(stack.ini, "pythonpath"), "error", "pythonpath",
        str(stack.root / "nowhere/lib"),
    )


def test_no_app(stack: StackDir) -> None:
    edit(stack.ini, "module = app\n", "")
    assert_finding(single(stack), stack.ini, line_of(stack.ini, "[uwsgi]"), "error", "no app")


def test_world_writable_dir_without_sticky_bit(stack: StackDir) -> None:
    shared = stack.root / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    add_ini(stack, "master-fifo = %dshared/uwsgi.fifo")
    finding = single(stack)
    line = line_of(stack.ini, "master-fifo")
    assert_finding(finding, stack.ini, line, "warning", "master-fifo", str(shared), "sticky")


def test_world_writable_dir_with_sticky_bit(stack: StackDir) -> None:
    tmp_like = stack.root / "tmp"
    tmp_like.mkdir()
    tmp_like.chmod(0o1777)
    add_ini(stack, "pidfile = tmp/uwsgi.pid")  # relative to the ini's dir: written before chdir
    finding = single(stack)
    line = line_of(stack.ini, "pidfile")
    assert_finding(finding, stack.ini, line, "warning", "pidfile", str(tmp_like), "first")


def test_pidfile_in_a_private_dir_is_fine(stack: StackDir) -> None:
    add_ini(stack, "pidfile = %duwsgi.pid", "master-fifo = %dmaster.fifo")
    assert run(stack) == []


@pytest.mark.parametrize("text", ["", "[app]\nmodule = app\n", "module = app\n[uwsgi]\n"])
def test_no_uwsgi_section(stack: StackDir, text: str) -> None:
    stack.ini.write_text(text)
    assert_finding(single(stack), stack.ini, 1, "error", "[uwsgi] section")


def test_the_seed_tutorials_ini(stack: StackDir) -> None:
    """The tutorial's uwsgi.ini: every inline comment, daemonize, no master, stats, touch."""
    ini = FIXTURES / "seed_uwsgi.ini"
    edit(stack.toml, 'ini = "uwsgi.ini"', f'ini = "{ini}"')
    edit(stack.nginx_conf, f"uwsgi_pass 127.0.0.1:{stack.uwsgi_port}", "uwsgi_pass 127.0.0.1:5000")
    found = run(stack)
    assert all(f.path == str(ini) for f in found), formatted(found)
    expected = (
        [(line, "error", "inline comment in") for line in (3, *range(7, 17))] + [
            (2, "error", "no 'master'"),
            (12, "warning", "stats on TCP"),
            (14, "error", "'daemonize' detaches uWSGI"),
            (15, "warning", "lazy-apps: a respawned worker imports the files on disk"),
            (17, "warning", "'touch-chain-reload = true' watches a file named 'true'"),
        ]
    )
    got = sorted(found, key=lambda f: (f.line, "inline comment" not in f.message))
    expected.sort(key=lambda e: (e[0], "inline comment" not in e[2]))
    assert len(got) == len(expected), formatted(found)
    for finding, (line, severity, phrase) in zip(got, expected, strict=True):
        assert (finding.line, finding.severity) == (line, severity), finding.format()
        assert phrase in finding.message, finding.format()


# -- nginx.conf --------------------------------------------------------------------------


def test_nginx_t_error_mapped_to_file_and_line(stack: StackDir) -> None:
    edit(stack.nginx_conf, "access_log off;", "access_log off;\n    foo bar;")
    finding = single(stack)
    line = line_of(stack.nginx_conf, "foo bar")
    assert_finding(finding, stack.nginx_conf, line, "error", "nginx -t", 'unknown directive "foo"')


def test_daemon_directive(stack: StackDir) -> None:
    edit(stack.nginx_conf, "worker_processes 2;", "daemon off;\nworker_processes 2;")
    finding = single(stack)  # nginx -t's "duplicate" at the same line is not repeated
    assert_finding(finding, stack.nginx_conf, 1, "error", "daemon", "foreground")
    config = checks.fnud_toml.load(stack.toml)[0]
    assert config is not None
    assert checks.errors_for(config) == [finding.format()]  # without nginx -t too


def test_crossplane_parse_error(stack: StackDir) -> None:
    text = stack.nginx_conf.read_text().rstrip()
    stack.nginx_conf.write_text(text.removesuffix("}"))
    last = len(stack.nginx_conf.read_text().splitlines())
    assert_finding(single(stack), stack.nginx_conf, last, "error", "unexpected end of file")


def test_missing_include(stack: StackDir) -> None:
    edit(stack.nginx_conf, "/etc/nginx/uwsgi_params", "/nonexistent/uwsgi_params")
    assert_finding(
        single(stack), stack.nginx_conf, line_of(stack.nginx_conf, "/nonexistent/"), "error",
        "cannot open /nonexistent/uwsgi_params",
    )


# -- nginx reaches uWSGI -----------------------------------------------------------------


def test_uwsgi_pass_to_the_wrong_port(stack: StackDir) -> None:
    other = stack.uwsgi_port + 1 if stack.uwsgi_port < 65535 else 1025
    edit(stack.nginx_conf, f"uwsgi_pass 127.0.0.1:{stack.uwsgi_port}",
         f"uwsgi_pass 127.0.0.1:{other}")
    finding = single(stack)
    assert_finding(finding, stack.nginx_conf, line_of(stack.nginx_conf, "uwsgi_pass"), "error",
                   "does not reach uWSGI",
                   f"127.0.0.1:{stack.uwsgi_port}")
    assert f"uwsgi_pass 127.0.0.1:{stack.uwsgi_port};" in finding.hint


def upstream_conf(stack: StackDir, server: str, pass_line: str = "uwsgi_pass app;") -> None:
    block = f"    upstream app {{\n        server {server};\n    }}\n"
    edit(stack.nginx_conf, "    server {", block + "    server {")
    edit(stack.nginx_conf, f"uwsgi_pass 127.0.0.1:{stack.uwsgi_port};", pass_line)


def test_upstream_with_localhost_reaches_uwsgi(stack: StackDir) -> None:
    upstream_conf(stack, f"localhost:{stack.uwsgi_port}")
    assert run(stack) == []


def test_upstream_to_the_wrong_address(stack: StackDir) -> None:
    upstream_conf(stack, f"127.0.0.2:{stack.uwsgi_port}")
    finding = single(stack)
    line = line_of(stack.nginx_conf, "uwsgi_pass app")
    assert_finding(finding, stack.nginx_conf, line, "error", "uwsgi_pass app", "does not reach")


def test_proxy_pass_to_a_uwsgi_protocol_socket(stack: StackDir) -> None:
    upstream_conf(stack, f"127.0.0.1:{stack.uwsgi_port}", "proxy_pass http://app;")
    finding = single(stack)
    line = line_of(stack.nginx_conf, "proxy_pass")
    assert_finding(finding, stack.nginx_conf, line, "error", "speaks uwsgi, not http")


def test_proxy_pass_to_an_http_socket(stack: StackDir) -> None:
    edit(stack.ini, "socket =", "http-socket =")
    edit(stack.nginx_conf, f"uwsgi_pass 127.0.0.1:{stack.uwsgi_port};",
         f"proxy_pass http://localhost:{stack.uwsgi_port}/;")
    assert run(stack) == []


def test_unix_sockets(stack: StackDir) -> None:
    edit(stack.ini, f"socket = 127.0.0.1:{stack.uwsgi_port}", "socket = %dapp.sock")
    edit(stack.nginx_conf, f"uwsgi_pass 127.0.0.1:{stack.uwsgi_port};",
         f"uwsgi_pass unix:{stack.root}/app.sock;")
    assert run(stack) == []
    edit(stack.ini, "socket = %dapp.sock", "socket = other.sock")  # relative to chdir (app/)
    finding = single(stack)
    assert_finding(finding, stack.nginx_conf, line_of(stack.nginx_conf, "uwsgi_pass"), "error",
                   "does not reach",
                   f"unix:{stack.root}/app/other.sock")


def test_no_pass_at_all(stack: StackDir) -> None:
    edit(stack.nginx_conf, f"uwsgi_pass 127.0.0.1:{stack.uwsgi_port};", "return 204;")
    line = line_of(stack.nginx_conf, "http {")
    assert_finding(single(stack), stack.nginx_conf, line, "error", "no uwsgi_pass or proxy_pass")


def test_no_socket_in_the_ini(stack: StackDir) -> None:
    edit(stack.ini, f"socket = 127.0.0.1:{stack.uwsgi_port}\n", "")
    assert_finding(single(stack), stack.ini, line_of(stack.ini, "[uwsgi]"), "error", "no socket")


def test_pass_through_a_variable_is_not_judged(stack: StackDir) -> None:
    edit(stack.nginx_conf, f"uwsgi_pass 127.0.0.1:{stack.uwsgi_port};",
         "set $backend 127.0.0.1:1;\n            uwsgi_pass $backend;")
    assert run(stack) == []


# -- ports -------------------------------------------------------------------------------


def test_listen_port_in_use(stack: StackDir) -> None:
    with listening(stack.http_port):
        finding = single(stack)
        line = line_of(stack.nginx_conf, "listen")
        assert_finding(finding, stack.nginx_conf, line, "error", "listen", "in use",
                       f"pid {os.getpid()}")
        assert run(stack, check_ports=False) == []


def test_uwsgi_socket_port_in_use(stack: StackDir) -> None:
    with listening(stack.uwsgi_port):
        line = line_of(stack.ini, "socket =")
        assert_finding(single(stack), stack.ini, line, "error", "socket", "in use")


def test_uwsgi_and_nginx_on_the_same_port(stack: StackDir) -> None:
    edit(stack.ini, f"socket = 127.0.0.1:{stack.uwsgi_port}", f"socket = :{stack.http_port}")
    edit(stack.nginx_conf, f"uwsgi_pass 127.0.0.1:{stack.uwsgi_port}",
         f"uwsgi_pass 127.0.0.1:{stack.http_port}")
    finding = single(stack, check_ports=False)  # a static rule: also on reload
    listen = line_of(stack.nginx_conf, "listen")
    assert_finding(finding, stack.ini, line_of(stack.ini, "socket ="), "error",
                   "nginx listens on the same port", f"nginx.conf:{listen}")


# -- fnud.toml ---------------------------------------------------------------------------


def test_toml_unknown_key(stack: StackDir) -> None:
    edit(stack.toml, "reload_timeout = 15.0", "reload_timout = 15.0")
    line = line_of(stack.toml, "reload_timout")
    assert_finding(single(stack), stack.toml, line, "error", "unknown key 'reload_timout'")


def test_toml_wrong_type(stack: StackDir) -> None:
    edit(stack.toml, "stop_timeout = 10.0", 'stop_timeout = "ten"')
    line = line_of(stack.toml, "stop_timeout")
    assert_finding(single(stack), stack.toml, line, "error", "stop_timeout", "number")


def test_toml_syntax_error(stack: StackDir) -> None:
    edit(stack.toml, 'log_dir = "log"', 'log_dir = "log')
    line = line_of(stack.toml, "log_dir")
    assert_finding(single(stack), stack.toml, line, "error", "invalid TOML")


@pytest.mark.parametrize(("section", "key", "value"), [("uwsgi", "ini", "uwsgi.ini"),
                                                       ("nginx", "conf", "nginx.conf")])
def test_toml_names_a_missing_file(stack: StackDir, section: str, key: str, value: str) -> None:
    edit(stack.toml, f'{key} = "{value}"', f'{key} = "missing/{value}"')
    line = line_of(stack.toml, f'{key} = "missing/')
    finding = single(stack)
    assert_finding(finding, stack.toml, line, "error", f"[{section}] {key}", "not found")


def test_toml_file_missing(stack: StackDir) -> None:
    stack.toml.unlink()
    assert_finding(single(stack), stack.toml, 0, "error", "not found")


def test_nginx_prefix_that_cannot_be_created(stack: StackDir) -> None:
    edit(stack.toml, "reload_timeout = 15.0", 'reload_timeout = 15.0\nprefix = "fnud.toml/sub"')
    line = line_of(stack.toml, "prefix =")
    assert_finding(single(stack), stack.toml, line, "error", "cannot create nginx's prefix")


# -- errors_for (the daemon's gate) --------------------------------------------------------


def test_errors_for_reports_errors_only(stack: StackDir) -> None:
    config = checks.fnud_toml.load(stack.toml)[0]
    assert config is not None
    add_ini(stack, "stats = 127.0.0.1:9191")  # a warning: no reason to refuse
    assert checks.errors_for(config) == []
    add_ini(stack, "daemonize = %duwsgi.log")
    line = line_of(stack.ini, "daemonize")
    assert checks.errors_for(config) == [
        f"{stack.ini}:{line}: error: 'daemonize' detaches uWSGI from its supervisor (remove it: "
        "fnud comments it out when it runs uWSGI and logs its output itself)"
    ]


def test_errors_for_on_reload_ignores_ports(stack: StackDir) -> None:
    config = checks.fnud_toml.load(stack.toml)[0]
    assert config is not None
    with listening(stack.http_port):
        assert len(checks.errors_for(config)) == 1
        assert checks.errors_for(config, check_ports=False) == []


def test_errors_for_leaves_nginx_t_to_the_caller(stack: StackDir) -> None:
    config = checks.fnud_toml.load(stack.toml)[0]
    assert config is not None
    edit(stack.nginx_conf, "access_log off;", "access_log off;\n    foo bar;")
    assert checks.errors_for(config) == []
    assert not stack.run.exists()


# -- the real CLI --------------------------------------------------------------------------


def fnud_check(toml: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "supervisor", "-c", str(toml), "check"],
        capture_output=True, text=True, timeout=60, cwd=ROOT, stdin=subprocess.DEVNULL,
    )


def findings(result: subprocess.CompletedProcess[str]) -> list[str]:
    """fnud check's lines after the first, which says who runs what."""
    mode, *lines = result.stdout.splitlines()
    assert mode.startswith("mode: root: "), result.stdout  # the tests run as root
    return lines


def test_cli_on_a_clean_and_a_broken_config(stack: StackDir) -> None:
    result = fnud_check(stack.toml)
    assert (result.returncode, findings(result)) == (0, ["no problems found"]), result.stderr
    add_ini(stack, "daemonize = %duwsgi.log", "stats = :9191")
    result = fnud_check(stack.toml)
    assert result.returncode == 1, result.stdout + result.stderr
    daemonize, stats = line_of(stack.ini, "daemonize"), line_of(stack.ini, "stats")
    assert findings(result) == [
        f"{stack.ini}:{daemonize}: error: 'daemonize' detaches uWSGI from its supervisor (remove "
        "it: fnud comments it out when it runs uWSGI and logs its output itself)",
        f"{stack.ini}:{stats}: warning: 'stats = :9191' serves worker stats on TCP: every local "
        "user can read them (remove it: fnud comments it out and gives uWSGI a stats socket "
        "in its private runtime dir)",
        "1 error, 1 warning",
    ]


def test_cli_on_the_example_config() -> None:
    """The shipped example is clean; its fixed ports (8080, 8001) may be taken on a shared box."""
    result = fnud_check(ROOT / "config" / "fnud.toml")
    lines = findings(result)
    if result.returncode != 0:
        problems = [line for line in lines[:-1] if ": error: " in line]
        busy = [line for line in problems if "in use" in line]
        if problems and busy == problems:
            pytest.skip(f"example ports taken by another process: {busy[0]}")
    assert (result.returncode, lines) == (0, ["no problems found"]), result.stdout + result.stderr


def test_example_ports_are_those_the_test_above_expects() -> None:
    text = (ROOT / "config" / "nginx.conf").read_text()
    assert "listen 127.0.0.1:8080;" in text and "server 127.0.0.1:8001;" in text
    assert ports.parse_nginx_listen("127.0.0.1:8080") == ports.Address("127.0.0.1", 8080)
