"""The gate's order and verdicts, with the checks themselves faked (no nginx, no uWSGI)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from supervisor.appserver.spec import AppSpec
from supervisor.config.parse import load_config
from supervisor.config.schema import Config
from supervisor.nginx.conf import NginxConf
from supervisor.reload import gate
from supervisor.reload.preflight import PreflightError
from supervisor.stack.plan import Plan, StackError
from testkit import stackfiles

TOML = """\
[fnud]
runtime_dir = "run"
allow_root = true
[uwsgi]
ini = "uwsgi.ini"
[nginx]
conf = "nginx.conf"
"""


class FakeChecks:
    """Records which checks ran, in order; each can be told to fail."""

    def __init__(self, fail: str = "") -> None:
        self.fail = fail
        self.ran: list[str] = []

    def checkers(self) -> gate.Checkers:
        def binaries(plan: Plan) -> None:
            self.ran.append("binaries")
            if self.fail == "binaries":
                raise StackError("uwsgi binary not found (uwsgi)")

        def lint(config: Config, ports: bool) -> list[str]:
            self.ran.append(f"lint ports={ports}")
            return ["uwsgi.ini:3: error: a", "uwsgi.ini:4: error: b"] if self.fail == "lint" else []

        def root(plan: Plan) -> str:
            self.ran.append("root")
            return "refusing to run the app as root" if self.fail == "root" else ""

        async def nginx_test(plan: Plan, conf: NginxConf) -> tuple[bool, str]:
            self.ran.append("nginx -t")
            if self.fail == "nginx":
                return False, "nginx.conf:3: unknown directive"
            return True, ""

        async def import_app(plan: Plan, spec: AppSpec) -> str:
            self.ran.append("preflight")
            if self.fail == "preflight":
                raise PreflightError("app.py:1: SyntaxError: invalid syntax")
            return "app.py"

        return gate.Checkers(binaries, lint, root, nginx_test, import_app)


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    (tmp_path / "fnud.toml").write_text(TOML)
    (tmp_path / "uwsgi.ini").write_text(stackfiles.uwsgi_ini(3031, 2))
    (tmp_path / "nginx.conf").write_text(stackfiles.nginx_conf(8080, 3031))
    return Plan(load_config(tmp_path / "fnud.toml"), {})


def run(plan: Plan, fake: FakeChecks, request: gate.Request) -> gate.Passed:
    return asyncio.run(gate.Gate(lambda: plan, fake.checkers()).run(request))


def test_every_check_runs_in_order_and_passes(plan: Plan) -> None:
    fake = FakeChecks()
    passed = run(plan, fake, gate.Request(check_ports=True))
    assert fake.ran == ["binaries", "lint ports=True", "root", "nginx -t", "preflight"]
    assert passed.spec is not None and passed.spec.module == "app"
    assert passed.conf is not None


@pytest.mark.parametrize(
    ("fail", "check", "ran_last", "text"),
    [
        ("binaries", "binaries", "binaries", "uwsgi binary not found"),
        ("lint", "lint", "lint ports=False", "uwsgi.ini:3: error: a (and 1 more; run fnud check)"),
        ("root", "root", "root", "refusing to run the app as root"),
        ("nginx", "nginx -t", "nginx -t", "nginx -t failed: nginx.conf:3: unknown directive"),
        ("preflight", "preflight", "preflight", "app does not load: app.py:1: SyntaxError"),
    ],
)
def test_the_first_failing_check_refuses_and_nothing_after_it_runs(
    plan: Plan, fail: str, check: str, ran_last: str, text: str
) -> None:
    fake = FakeChecks(fail)
    with pytest.raises(gate.Refused) as refused:
        run(plan, fake, gate.Request())
    assert refused.value.failure.check == check
    assert str(refused.value).startswith(text)
    assert fake.ran[-1] == ran_last


def test_only_what_the_request_asks_for_runs(plan: Plan) -> None:
    fake = FakeChecks()
    passed = run(plan, fake, gate.Request(nginx=False, app=False))
    assert fake.ran == ["binaries", "lint ports=False", "root"]
    assert passed.conf is None and passed.spec is None


def test_a_reload_rereads_the_config_and_refuses_settings_that_need_a_restart(
    plan: Plan,
) -> None:
    plan.config.path.write_text(TOML.replace('runtime_dir = "run"', 'runtime_dir = "elsewhere"'))
    fake = FakeChecks()
    with pytest.raises(gate.Refused) as refused:
        run(plan, fake, gate.Request(reread=True))
    assert refused.value.failure.check == "config"
    assert "[fnud] runtime_dir" in str(refused.value)
    assert fake.ran == []


def test_a_broken_config_is_refused_with_file_and_line(plan: Plan) -> None:
    plan.config.path.write_text(TOML + "[health]\nurl = 3\n")
    with pytest.raises(gate.Refused) as refused:
        run(plan, FakeChecks(), gate.Request(reread=True))
    assert refused.value.failure.check == "config"
    assert str(refused.value).startswith(f"{plan.config.path}:")


def test_the_gate_never_replaces_the_config_in_force(plan: Plan) -> None:
    before = plan.config
    plan.config.path.write_text(TOML + "[health]\ninterval = 3.0\n")
    passed = run(plan, FakeChecks(), gate.Request(reread=True))
    assert passed.plan.config.health.interval == 3.0
    assert plan.config is before
