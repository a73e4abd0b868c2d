"""The gunicorn adapter and its checks without a process: the conf read with ast, the
wrapper config it runs under, the events and access lines it writes, its command line,
and what `fnud check` says of a gunicorn stack."""

from __future__ import annotations

import ast
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from supervisor.checks import runner as checks
from supervisor.config.parse import load_config
from supervisor.gunicorn.answers import access_status, is_access_line
from supervisor.gunicorn.app import CHDIR
from supervisor.gunicorn.conf import UNKNOWN, read_conf
from supervisor.gunicorn.driver import EXEC, GunicornDriver
from supervisor.gunicorn.events import Events
from supervisor.gunicorn.wrapper import render
from supervisor.sockets.held import Holder
from supervisor.stack.plan import Plan
from supervisor.systemd import unit
from testkit.stackdir import StackDir, make_gunicorn_stack_dir


@pytest.fixture
def stack() -> Iterator[StackDir]:
    made = make_gunicorn_stack_dir()
    yield made
    shutil.rmtree(made.root, ignore_errors=True)


def findings(stack: StackDir) -> list[str]:
    config = load_config(stack.toml)
    return [f.format() for f in checks.check_config(
        config, run_nginx_test=False, check_ports=False
    )]


def test_the_conf_is_read_without_running_it() -> None:
    conf = read_conf(
        "import os\nworkers = 4\nif os.environ.get('X'):\n    daemon = True\n"
        "bind = ['0.0.0.0:80']\npidfile = os.path.join('a', 'b')\n"
        "def post_fork(server, worker):\n    reload = True\n"
    )
    assert conf.value("workers") == 4 and conf.value("bind") == ["0.0.0.0:80"]
    daemon = conf.last("daemon")
    assert daemon is not None and (daemon.line, daemon.value, daemon.conditional) == (
        4, True, True
    )
    assert conf.value("pidfile", "x") == "x" and conf.settings["pidfile"][0].value is UNKNOWN
    assert conf.last("reload") is None  # inside a hook: runs later, not at load
    assert read_conf("workers = (\n").error == (1, "SyntaxError: '(' was never closed")


def test_fnud_check_names_what_the_conf_may_not_do_with_file_and_line(
    stack: StackDir,
) -> None:
    stack.gunicorn_conf.write_text(
        "daemon = True\npidfile = '/run/g.pid'\nbind = ['127.0.0.1:9999']\n"
        "reuse_port = True\nraw_env = ['LISTEN_FDS=2', 'APP_MODE=prod']\nreload = True\n"
        "proc_name = 'app'\nworker_class = 'gevent'\nworkers = 2\n"
    )
    out = findings(stack)
    conf = str(stack.gunicorn_conf)
    for line, text in [
        (1, "error: daemon: gunicorn would detach from fnud"),
        (2, "error: pidfile:"),
        (3, "error: bind = ['127.0.0.1:9999']: a second address beside [gunicorn] bind"),
        (4, "error: reuse_port:"),
        (5, "error: raw_env 'LISTEN_FDS=2'"),
        (6, "error: reload: gunicorn's own reloader"),
        (7, "warning: proc_name: fnud sets a name carrying the generation's config file"),
        (8, "warning: worker_class = 'gevent': fnud cannot keep the previous generation warm"),
        (9, "warning: workers: [gunicorn] workers = 3 in fnud.toml wins"),
    ]:
        assert any(f.startswith(f"{conf}:{line}: {text}") for f in out), (line, out)
    assert not any("APP_MODE" in f for f in out)


def test_fnud_check_accepts_the_bind_fnud_holds_and_reports_a_syntax_error(
    stack: StackDir,
) -> None:
    stack.gunicorn_conf.write_text(f"bind = '127.0.0.1:{stack.app_port}'\ntimeout = 30\n")
    assert findings(stack) == []
    stack.gunicorn_conf.write_text("timeout = 30\nworkers = (\n")
    assert findings(stack) == [
        f"{stack.gunicorn_conf}:2: error: gunicorn would not read it: SyntaxError: '(' was "
        "never closed"
    ]


def test_nginx_must_proxy_http_to_the_bind(stack: StackDir) -> None:
    conf = stack.nginx_conf.read_text()
    stack.nginx_conf.write_text(conf.replace(f"127.0.0.1:{stack.app_port}", "127.0.0.1:1"))
    assert any(f"proxy_pass http://127.0.0.1:1 does not reach gunicorn ([gunicorn] bind = "
               f'"127.0.0.1:{stack.app_port}")' in f for f in findings(stack))
    stack.nginx_conf.write_text(conf.replace(
        f"proxy_pass http://127.0.0.1:{stack.app_port};",
        f"include /etc/nginx/uwsgi_params; uwsgi_pass 127.0.0.1:{stack.app_port};",
    ))
    assert any("which speaks http, not uwsgi" in f for f in findings(stack))
    stack.nginx_conf.write_text(conf.replace(
        "http {", f"http {{\n    upstream app {{ server 127.0.0.1:{stack.app_port}; }}"
    ).replace(f"proxy_pass http://127.0.0.1:{stack.app_port};", "proxy_pass http://app;"))
    assert findings(stack) == []


def test_a_missing_chdir_and_the_older_balancer_spelling(stack: StackDir) -> None:
    text = stack.toml.read_text()
    stack.toml.write_text(text.replace('chdir = "app"', 'chdir = "nowhere"'))
    assert any("[gunicorn] chdir:" in f and "is not a directory" in f for f in findings(stack))
    start = text.index("[gunicorn]")
    stack.toml.write_text(text[:start] + "[uwsgi]\nenabled = false\n\n" + text[
        text.index("[nginx]"):])
    assert any("warning: [uwsgi] enabled = false is the older spelling" in f
               for f in findings(stack))


def test_the_preflight_imports_the_app_as_gunicorn_would(stack: StackDir) -> None:
    stack.gunicorn_conf.write_text("pythonpath = 'lib,../shared'\nraw_env = ['A=1', 'B=x=y']\n")
    stack.toml.write_text(stack.toml.read_text().replace('"app:app"', '"app:make_app(2)"'))
    spec = Plan(load_config(stack.toml), {}).app()
    app_dir = str(stack.root / "app")
    assert (spec.module, spec.callable, spec.factory, spec.stubs) == (
        "app", "make_app(2)", True, ()
    )
    assert spec.chdir == app_dir and spec.pythonpath == (f"{app_dir}/lib", f"{stack.root}/shared")
    assert spec.env == (("A", "1"), ("B", "x=y"))


def test_the_wrapper_runs_the_users_conf_then_sets_what_fnud_owns(tmp_path: Path) -> None:
    user = tmp_path / "user.py"
    user.write_text(
        "daemon = True\nworkers = 2\nreuse_port = True\nraw_env = ['LISTEN_PID=1', 'A=1']\n"
        "calls = []\ndef post_worker_init(worker):\n    calls.append(worker)\n"
    )
    (tmp_path / "events").write_text("")  # fnud makes it, for the workers' user
    text = render({"user_conf": str(user), "user_conf_name": "/etc/app/gunicorn.conf.py",
                   "chdir": "/srv/app", "events": str(tmp_path / "events"), "workers": 5})
    namespace: dict[str, Any] = {"__file__": "conf.py", "__name__": "__config__"}
    exec(compile(text, "conf.py", "exec"), namespace)
    assert (namespace["daemon"], namespace["reuse_port"], namespace["pidfile"]) == (
        False, False, None
    )
    assert (namespace["workers"], namespace["chdir"], namespace["raw_env"]) == (
        5, "/srv/app", ["A=1"]
    )
    assert namespace["control_socket_disable"] is True
    assert namespace["logger_class"].__mro__[1].__name__ == "Logger"  # gunicorn's, extended

    class Worker:
        ppid, age, pid = 1, 7, 2

    namespace["post_worker_init"](Worker)  # the user's hook, then fnud's event
    assert namespace["calls"] == [Worker]
    event = json.loads((tmp_path / "events").read_text())
    assert (event["ev"], event["age"]) == ("ready", 7)
    ast.parse(text)


def test_events_and_access_lines() -> None:
    events = Events(Path("/nonexistent"))
    for line in [
        {"ev": "master", "pid": 10, "workers": 2, "pause": "sync"},
        {"ev": "ready", "pid": 11, "ppid": 10, "age": 1},
        {"ev": "ready", "pid": 99, "ppid": 98, "age": 1},  # another master's worker
        {"ev": "ready", "pid": 12, "ppid": 10, "age": 2},
        {"ev": "parked", "pid": 11}, {"ev": "parked", "pid": 12}, {"ev": "unparked", "pid": 12},
        {"ev": "exit", "pid": 10, "worker": 12},
    ]:
        events.apply(line)
    assert (events.master, events.wanted, events.pause) == (10, 2, "sync")
    assert events.ready == {11: 1} and events.parked == {11} and events.exits == 1
    line = 'fnud-answer <4242> 503 GET "/health" 3ms'
    assert access_status(line) == (4242, 503) and is_access_line(line)
    assert access_status("[2026-12-06 21:14:04 +0000] [14411] [INFO] Starting") is None


def test_the_command_execs_gunicorn_in_place_on_the_held_socket(stack: StackDir) -> None:
    plan = Plan(load_config(stack.toml), {"PATH": "/bin", "GUNICORN_CMD_ARGS": "--daemon",
                                          "LISTEN_PID": "1", "NOTIFY_SOCKET": "@x"})
    plan.paths.corner("gunicorn").mkdir(parents=True)
    holder = Holder()
    try:
        driver = plan.app_driver(holder, 4)
        assert isinstance(driver, GunicornDriver)
        driver.bind()
        command = driver.command()
        fd = holder.held[f"127.0.0.1:{stack.app_port}"].fd
        assert command.argv[:4] == ["/bin/sh", "-c", EXEC, "sh"] and command.stdin == fd
        assert command.argv[4:] == [
            plan.gunicorn_python(), "-m", "gunicorn", "-c",
            str(stack.run / "gunicorn-4.conf.py"), "app:app",
        ]
        assert command.env == {"PATH": "/bin"} and command.cwd == str(stack.root / "app")
        pinned = driver.pinned()
        assert pinned is not None and pinned.server == "gunicorn"
        assert pinned.source[1] == {CHDIR: str(stack.root / "app")}
        assert (stack.run / "gunicorn" / "gunicorn-4.ctl").read_bytes() == b"\0" * 4096
    finally:
        holder.close()


def test_the_systemd_unit_of_a_gunicorn_stack_names_gunicorn(stack: StackDir) -> None:
    text = unit.render(load_config(stack.toml), "/opt/fnud/bin/fnud", euid=0)
    assert "Flask -> gunicorn -> nginx" in text and "gunicorn.log and nginx.log" in text
    assert "uWSGI" not in text and "uwsgi" not in text.replace("uwsgi_pass", "")
