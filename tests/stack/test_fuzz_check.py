"""The real `fnud check` CLI on hypothesis-generated broken files, one kind at a time
(the other two stay valid): exit 0 or 1, never a traceback, every line a finding or the
summary.

`fnud check` probes ports, runs nginx -t and asks two interpreters for their prefix: on
fuzzed host names both nginx and the probes would ask DNS. Each run is in a network
namespace of its own with only loopback up (``unshare --net``, as root), so that nothing
leaves the machine whatever the fuzzer writes; fuzzed fnud.toml values name no path
outside the stack dir.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testkit.fuzzing import INI_TEXT, NGINX_BYTES, TOML_TEXT, examples
from testkit.stackdir import StackDir, make_stack_dir

FINDING = re.compile(r"^.+: (error|warning): .+$")
SUMMARY = re.compile(
    r"^(no problems found|\d+ errors?(, \d+ warnings?)?|\d+ warnings?)$"
)
CLI = settings(
    max_examples=examples(15), deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _isolated() -> list[str]:
    """The command prefix that runs its argv in a fresh network namespace, loopback up."""
    return ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]


@pytest.fixture(scope="module")
def check_stack() -> Iterator[StackDir]:
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("needs root, unshare and ip: a network namespace keeps nginx -t and "
                    "the port probes of fuzzed names off the network")
    probe = subprocess.run([*_isolated(), "true"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"no network namespace here: {probe.stderr.decode(errors='replace')}")
    stack = make_stack_dir()
    yield stack
    shutil.rmtree(stack.root, ignore_errors=True)


def _fnud_check(stack: StackDir) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_isolated(), sys.executable, "-m", "supervisor", "-c", str(stack.toml), "check"],
        capture_output=True, text=True, errors="surrogateescape", timeout=120,
        stdin=subprocess.DEVNULL, env={**os.environ, **stack.env},
    )


def _assert_clean_report(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode in (0, 1), result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    if lines and lines[0].startswith("mode: "):  # who runs what, when fnud.toml parses
        lines = lines[1:]
    assert lines and SUMMARY.match(lines[-1]), result.stdout
    assert all(FINDING.match(line) for line in lines[:-1]), result.stdout
    errors = any(": error: " in line for line in lines[:-1])
    assert result.returncode == (1 if errors else 0), result.stdout


def _valid(stack: StackDir) -> dict[str, bytes]:
    return {"toml": stack.toml.read_bytes(), "ini": stack.ini.read_bytes(),
            "nginx": stack.nginx_conf.read_bytes()}


def _inside(text: str) -> bool:
    """No path out of the stack dir (nginx's prefix dirs are made and removed there)."""
    return not any(mark in text for mark in ("/", "~", ".."))


@CLI
@given(text=TOML_TEXT.filter(_inside))
def test_fnud_check_on_broken_fnud_toml(check_stack: StackDir, text: str) -> None:
    saved = _valid(check_stack)
    try:
        check_stack.toml.write_text(text, encoding="utf-8")
        _assert_clean_report(_fnud_check(check_stack))
    finally:
        check_stack.toml.write_bytes(saved["toml"])


@CLI
@given(text=INI_TEXT)
def test_fnud_check_on_broken_uwsgi_ini(check_stack: StackDir, text: str) -> None:
    saved = _valid(check_stack)
    try:
        check_stack.ini.write_bytes(text.encode("utf-8", "surrogateescape"))
        _assert_clean_report(_fnud_check(check_stack))
    finally:
        check_stack.ini.write_bytes(saved["ini"])


@CLI
@given(data=st.one_of(NGINX_BYTES))
def test_fnud_check_on_broken_nginx_conf(check_stack: StackDir, data: bytes) -> None:
    saved = _valid(check_stack)
    try:
        check_stack.nginx_conf.write_bytes(data)
        _assert_clean_report(_fnud_check(check_stack))
    finally:
        check_stack.nginx_conf.write_bytes(saved["nginx"])
