"""`fnud check` without processes: findings, nginx -t's output mapped to file:line,
and fuzzed fnud.toml, uwsgi.ini and nginx.conf that must never crash the checks."""

from __future__ import annotations

import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supervisor.checks import nginx_test
from supervisor.checks import runner as checks
from supervisor.checks.finding import Finding
from supervisor.common import ports
from supervisor.nginx import conf as nginx
from supervisor.nginx.configtest import ConfigTest
from testkit import stackfiles
from testkit.fuzzing import INI_TEXT, NGINX_BYTES, NGINX_TEXT, TOML_TEXT, examples
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
        assert finding.message.strip(), finding  # says what is wrong
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


def _fresh(stack: StackDir) -> None:
    """The stack's valid ini and nginx.conf again (another fuzz test broke one)."""
    stack.ini.write_text(stackfiles.uwsgi_ini(stack.uwsgi_port, 3, lazy=False))
    stack.nginx_conf.write_text(stackfiles.nginx_conf(stack.http_port, stack.uwsgi_port))


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


def _parsed_sanely(conf: nginx.NginxConf, path: Path) -> None:
    assert conf.files and conf.files[0] == str(path)
    for message in conf.errors:
        assert isinstance(message.line, int) and message.line >= 0 and message.text


@FUZZ
@given(data=NGINX_BYTES)
def test_any_nginx_conf_never_crashes(fuzz_stack: StackDir, data: bytes) -> None:
    fuzz_stack.nginx_conf.write_bytes(data)
    _parsed_sanely(nginx.analyze(fuzz_stack.nginx_conf), fuzz_stack.nginx_conf)
    no_internal_errors(_check(fuzz_stack.toml))


@FUZZ
@given(text=NGINX_TEXT, where=st.sampled_from(["main", "http", "server"]))
def test_any_included_nginx_file_never_crashes(
    fuzz_stack: StackDir, text: str, where: str
) -> None:
    """An included file is parsed in its block's context: what it breaks is reported
    against it, the main file still parses."""
    _fresh(fuzz_stack)
    anchor = {"main": "pid nginx.pid;", "http": "access_log off;",
              "server": "listen 127.0.0.1:"}[where]
    main = fuzz_stack.nginx_conf.read_text().replace(anchor, f"include inc/*.conf;\n{anchor}", 1)
    fuzz_stack.nginx_conf.write_text(main)
    (fuzz_stack.root / "inc").mkdir(exist_ok=True)
    (fuzz_stack.root / "inc" / "fuzz.conf").write_bytes(text.encode("utf-8", "surrogateescape"))
    _parsed_sanely(nginx.analyze(fuzz_stack.nginx_conf), fuzz_stack.nginx_conf)
    no_internal_errors(_check(fuzz_stack.toml))


@pytest.mark.parametrize("text", ["events {}\n0 ", 'events {}\nuser "nobody', "events {}\n\0\t"])
def test_a_statement_cut_off_by_the_end_of_file_is_named(tmp_path: Path, text: str) -> None:
    """crossplane's error is empty there (its token stream just ends): nginx's words,
    on the last line, as nginx -t says it."""
    path = tmp_path / "nginx.conf"
    path.write_text(text)
    conf = nginx.analyze(path)
    assert [(m.line, m.text) for m in conf.errors] == [
        (2, 'unexpected end of file, expecting ";" or "}"')
    ]


def test_nginx_t_prefix_never_takes_a_permission_away(tmp_path: Path) -> None:
    """fnud check prepares nginx's prefix for nginx -t: ``[nginx] prefix = "/tmp"`` made
    /tmp 0755 (no longer writable by other users) before."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    with nginx_test.scratch_prefix(shared, keep=False):
        pass
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    assert sorted(p.name for p in shared.iterdir()) == []  # its logs/ and tmp/ removed
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    with nginx_test.scratch_prefix(private, keep=True):
        pass
    assert stat.S_IMODE(private.stat().st_mode) == 0o755  # nginx's workers traverse it


def test_a_listen_that_cannot_be_bound_for_another_reason_gets_no_port_holder_hint(
    fuzz_stack: StackDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    """'stop that process or choose another port' only when a process holds the port."""
    _fresh(fuzz_stack)
    conf = fuzz_stack.nginx_conf.read_text()
    fuzz_stack.nginx_conf.write_text(conf.replace("location / {", "listen nosuch.invalid:80;\n"
                                                  "        location / {"))
    problems = {"nosuch.invalid": "cannot resolve nosuch.invalid: Name or service not known"}
    monkeypatch.setattr(
        ports, "in_use", lambda address, name_holder=True: problems.get(address.host)
    )
    found = checks.check_all(fuzz_stack.toml, run_nginx_test=False)
    assert [f.format() for f in found] == [
        f"{fuzz_stack.nginx_conf}:15: error: listen nosuch.invalid:80: cannot resolve "
        "nosuch.invalid: Name or service not known"
    ]
