"""TODO."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import strategies as st

from supervisor.checks import nginx_test
from supervisor.checks import runner as checks
from supervisor.checks.finding import Finding
from supervisor.nginx.configtest import ConfigTest
from testkit.stackdir import StackDir, make_stack_dir

_KEYS = st.sampled_from([
    "socket", "http-socket", "uwsgi-socket", "https", "chdir", "module", "wsgi-file", "mount",
    "master", "lazy-apps", "stats", "pidfile", "pidfile2", "master-fifo", "daemonize",
    "touch-chain-reload", "virtualenv", "home", "pythonpath", "protocol", "ini", "base",
    "shared-socket", "env",
])


_PIECES = st.sampled_from([
    "%d", "%(base)", "%(chdir)", "%(", "@(x)", "$(HOME)", "$(NOPE", "%t", "%", "#", " ;",
    ":", "127.0.0.1", ":8001", "localhost:", "[::1]:", "/", "..", "app", "true", "=0", ",",
    "²", "\0", "\t", "[uwsgi]", "\udcff", "x" * 300,
])


_VALUES = st.lists(st.one_of(_PIECES, st.text(max_size=8)), max_size=6).map("".join)


_INI_LINES = st.one_of(
    st.tuples(_KEYS, _VALUES).map(lambda kv: f"{kv[0]} = {kv[1]}"),
    st.sampled_from(["[uwsgi]", "[app]", "; comment", "   # comment", "[", "="]),
    st.text(max_size=40),
)


_INI_TEXT = st.one_of(st.text(), st.lists(_INI_LINES, max_size=12).map("\n".join))


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


_TOML_VALUES = st.one_of(
    st.text(max_size=12), st.sampled_from(["~", "~nosuchuser/x", "\0", "uwsgi.ini", "/", "."]),
    st.integers(), st.floats(), st.booleans(), st.lists(st.text(max_size=5), max_size=3),
)


_TOML_KEYS = st.sampled_from([
    "runtime_dir", "log_dir", "stop_timeout", "ini", "binary", "python", "conf", "prefix",
    "url", "initial", "max", "paths", "include", "enabled", "debounce_ms", "bogus",
])


_TOML_DOCS = st.dictionaries(
    st.sampled_from(["fnud", "uwsgi", "nginx", "health", "backoff", "watch", "nope"]),
    st.dictionaries(_TOML_KEYS, _TOML_VALUES, max_size=4), max_size=4,
)


def to_toml(doc: dict[str, dict[str, object]]) -> str:
    lines = []
    for section, table in doc.items():
        lines.append(f"[{section}]")
        for key, value in table.items():
            if isinstance(value, float) and value != value:
                rendered = "nan"
            elif isinstance(value, float) and value in (float("inf"), float("-inf")):
                rendered = "inf" if value > 0 else "-inf"
            else:
                rendered = json.dumps(value)
            lines.append(f"{key} = {rendered}")
    return "\n".join(lines) + "\n"


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
