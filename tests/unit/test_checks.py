"""`fnud check` without processes: findings, nginx -t's output mapped to file:line,
and fuzzed fnud.toml and uwsgi.ini that must never crash the checks."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from supervisor.checks import nginx_test
from supervisor.checks import runner as checks
from supervisor.checks.finding import Finding
from supervisor.nginx.configtest import ConfigTest
from testkit.fuzzing import INI_TEXT, TOML_TEXT, examples
from testkit.stackdir import StackDir, make_stack_dir


@pytest.fixture(scope="module")
def fuzz_stack() -> Iterator[StackDir]:
    made = make_stack_dir()
    yield made
    shutil.rmtree(made.root, ignore_errors=True)


def no_internal_errors(found: list[Finding]) -> None:
    assert isinstance(found, list)
    for finding in found:
        assert "internal error" not in finding.message, finding.format()
        finding.format().encode("utf-8")  # printable, whatever the input


def test_finding_format_and_summary() -> None:
    err = Finding("/x/uwsgi.ini", 3, "error", "bad value", "fix it")
    warn = Finding("/x/fnud.toml", 0, "warning", "line\nbreak\udcff")
    assert err.format() == "/x/uwsgi.ini:3: error: bad value (fix it)"
    assert warn.format() == "/x/fnud.toml: warning: line\\nbreak\\udcff"
    assert err.is_error and not warn.is_error
    assert checks.summary([]) == "no problems found"
    assert checks.summary([err, err, warn]) == "2 errors, 1 warning"
    assert checks.summary([warn]) == "1 warning"
    assert checks.summary([err]) == "1 error"


def test_nginx_t_output_parsing() -> None:
    conf = Path("/srv/nginx.conf")
    lines = (
        '2024/01/02 03:04:05 [warn] 12#12: conflicting server name "a" on 0.0.0.0:80, ignored',
        '[emerg] unknown directive "x" in /srv/inc/a b.conf:7',
        "configuration file /srv/nginx.conf test failed",
    )
    found = nginx_test.findings(ConfigTest(False, lines, conf))
    assert [(f.path, f.line, f.severity) for f in found] == [
        ("/srv/nginx.conf", 0, "warning"), ("/srv/inc/a b.conf", 7, "error"),
    ]
    assert found[1].message == 'nginx -t: unknown directive "x"'
    only_summary = nginx_test.findings(ConfigTest(False, lines[2:], conf))
    assert [(f.line, f.severity) for f in only_summary] == [(0, "error")]
    no_level = nginx_test.findings(ConfigTest(False, ("nginx: not found",), conf))
    assert [(f.line, f.severity) for f in no_level] == [(0, "error")]
    assert nginx_test.findings(ConfigTest(True, (), conf)) == []


# -- never a crash ----------------------------------------------------------------------

FUZZ = settings(
    max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _check(toml: Path) -> list[Finding]:
    # no nginx -t (a process) and no port probes (no lookups of random names)
    return checks.check_all(toml, run_nginx_test=False, check_ports=False)


@FUZZ
@given(text=INI_TEXT)
def test_any_ini_text_never_crashes(fuzz_stack: StackDir, text: str) -> None:
    fuzz_stack.ini.write_bytes(text.encode("utf-8", "surrogateescape"))
    no_internal_errors(_check(fuzz_stack.toml))


@FUZZ
@given(text=TOML_TEXT)
def test_any_toml_text_never_crashes(fuzz_stack: StackDir, text: str) -> None:
    toml = fuzz_stack.root / "fuzz.toml"
    toml.write_text(text, encoding="utf-8")
    no_internal_errors(_check(toml))
