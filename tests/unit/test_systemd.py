"""systemd: sd_notify on NOTIFY_SOCKET, the shipped unit and its template, journald lines."""

from __future__ import annotations

import io
import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from supervisor.config.parse import load_config
from supervisor.logs import logsetup
from supervisor.systemd import unit
from supervisor.systemd.notify import Notifier
from testkit.notify import Listener
from testkit.stackdir import ROOT

SHIPPED_UNIT = ROOT / "systemd" / "fnud.service"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def exec_lines(text: str) -> dict[str, str]:
    return dict(
        line.split("=", 1) for line in text.splitlines() if line.startswith(("Exec", "User="))
    )


def test_notifier_speaks_to_an_abstract_socket() -> None:
    name = f"@fnud-unit-{uuid.uuid4().hex[:12]}"
    receiver = Listener(name, "http://127.0.0.1:9/")
    try:
        notifier = Notifier({"NOTIFY_SOCKET": name})
        assert notifier.enabled
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        notifier.reloading()
        after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        notifier.ready("all good")
        notifier.stopping()
        got = [receiver.receive(timeout=5.0) for _ in range(3)]
    finally:
        receiver.close()
    assert all(m is not None and m.pid == os.getpid() for m in got)
    reloading, ready, stopping = (m.fields for m in got if m is not None)
    assert reloading.keys() == {"RELOADING", "MONOTONIC_USEC"}
    assert before <= int(reloading["MONOTONIC_USEC"]) <= after
    assert ready == {"READY": "1", "STATUS": "all good"}
    assert stopping == {"STOPPING": "1"}


def test_notifier_without_notify_socket_is_a_no_op() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    notifier.ready()  # nothing to send to, nothing raised
    notifier.stopping()


def test_shipped_unit_is_the_template_rendered_for_the_documented_layout() -> None:
    assert SHIPPED_UNIT.read_text() == unit.shipped(), (
        "systemd/fnud.service is generated: "
        "python -m supervisor.systemd.unit > systemd/fnud.service"
    )


def test_shipped_unit_settings() -> None:
    settings: dict[str, list[str]] = {}
    for line in SHIPPED_UNIT.read_text().splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    command = "/usr/local/bin/fnud -c /etc/fnud/fnud.toml"
    assert settings["ExecStart"] == [f"{command} start --foreground"]
    assert settings["ExecReload"] == [f"{command} reload"]
    expected = {
        "Type": "notify", "NotifyAccess": "main", "KillMode": "mixed",
        "Restart": "on-failure", "RuntimeDirectory": "fnud fnud-nginx",
        "RuntimeDirectoryMode": "0700",
        "LogsDirectory": "fnud", "NoNewPrivileges": "yes", "PrivateTmp": "yes",
        "ProtectSystem": "full", "ProtectHome": "read-only",
    }
    assert {key: settings[key][0] for key in expected} == expected
    assert int(settings["TimeoutStopSec"][0]) > 20  # fnud's default stop_timeout
    for breaks_the_stack in ("PrivateNetwork", "PrivateUsers", "User", "MemoryDenyWriteExecute"):
        assert breaks_the_stack not in settings


def test_render_defaults_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "fnud.toml").write_text("")
    config = load_config(tmp_path / "fnud.toml")
    text = unit.render(config, "/opt/fnud/venv/bin/fnud", euid=0)
    assert f"ReadWritePaths=-{tmp_path / 'run'}\n" in text
    assert f"ReadWritePaths=-{tmp_path / 'log'}\n" in text
    assert "\n#RuntimeDirectory=fnud\n" in text and "\n#LogsDirectory=fnud\n" in text
    # fnud_executable()'s fallback when no fnud script exists is a command line
    text = unit.render(config, "/usr/bin/python3 -m supervisor", euid=0)
    assert exec_lines(text)["ExecReload"] == (
        f"/usr/bin/python3 -m supervisor -c {tmp_path / 'fnud.toml'} reload"
    )


def test_journald_lines_have_a_priority_prefix_and_no_timestamp(restore_logging: None) -> None:
    out = io.StringIO()
    logsetup.configure(out, environ={"JOURNAL_STREAM": "8:12345"})
    log = logsetup.get("daemon")
    log.info("stack ready", url="http://127.0.0.1:8080/")
    log.warning("nginx said\nsomething on two lines", detail="a\nb")
    log.error("start failed", reason="port taken")
    log.debug("not shown at info")
    lines = out.getvalue().splitlines()
    assert len(lines) == 3, lines
    assert [line[:3] for line in lines] == ["<6>", "<4>", "<3>"]
    assert lines[0].startswith("<6>stack ready ")
    assert "url=http://127.0.0.1:8080/" in lines[0]
    for line in lines:
        assert not re.search(r"\d\d:\d\d:\d\d|\bts=", line), line


@pytest.mark.parametrize(("level", "shown"), [("debug", 3), ("WARNING", 2), ("error", 1)])
def test_log_level_by_name(restore_logging: None, level: str, shown: int) -> None:
    out = io.StringIO()
    logsetup.configure(out, level=level, environ={})
    log = logsetup.get("daemon")
    log.debug("d")
    log.warning("w")
    log.error("e")
    assert len(out.getvalue().splitlines()) == shown


def test_without_journal_stream_lines_carry_a_timestamp(restore_logging: None) -> None:
    out = io.StringIO()
    logsetup.configure(out, environ={})
    logsetup.get("daemon").info("stack ready")
    line = out.getvalue().strip()
    assert not line.startswith("<") and "msg=" in line and re.search(r"\bts=\d{4}-", line)


def test_watchdog_for_another_pid_is_not_ours() -> None:
    assert Notifier({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}).watchdog_interval == 0
    assert Notifier({"WATCHDOG_USEC": "1000000"}).watchdog_interval == 0.5


def test_the_socket_unit_listens_on_every_address_nginx_listens_on() -> None:
    from supervisor.systemd.socketunit import render_socket

    text = render_socket("/etc/fnud/fnud.toml", ["0.0.0.0:80", "[::]:443"])
    listens = [line for line in text.splitlines() if line.startswith("ListenStream=")]
    assert listens == ["ListenStream=0.0.0.0:80", "ListenStream=[::]:443"]
    assert "[Install]\nWantedBy=sockets.target" in text
