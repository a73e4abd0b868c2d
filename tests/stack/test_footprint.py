"""Issue 13: a thin CLI, a daemon that sleeps when idle, fnud check's uWSGI wheel trap."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from supervisor.checks.finding import Finding
from supervisor.checks.runner import check_all
from supervisor.checks.uwsgi_python import interpreter_prefix
from supervisor.config.parse import load_config
from testkit.stackdir import StackDir, make_stack_dir, wait_for

#: what the commands that only talk to the daemon must never import
HEAVY = (
    "asyncio", "ssl", "structlog", "psutil", "watchdog", "prometheus_client", "crossplane",
    "supervisor.config.parse", "supervisor.config.schema", "supervisor.control.server",
    "supervisor.daemon", "supervisor.process", "supervisor.stack", "supervisor.uwsgi",
    "supervisor.nginx", "supervisor.checks", "supervisor.logs.logsetup", "supervisor.reload",
    "supervisor.policy", "supervisor.health", "supervisor.triggers", "supervisor.web",
    "supervisor.appserver", "supervisor.sockets", "supervisor.adopt", "supervisor.systemd",
)

PROBE = """
import sys
from supervisor.cli.status import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r}
               or any(m == h or m.startswith(h + ".") for h in {HEAVY!r}))
print("\\nFNUD-MODULES", code, " ".join(heavy))
"""


def run_probe(
    stack: StackDir, *args: str, modules: tuple[str, ...] = HEAVY
) -> tuple[int, list[str], str]:
    """Run the CLI in a fresh interpreter; its exit code, which of ``modules`` it had
    imported at the end, its output."""
    script = PROBE.replace("{HEAVY!r}", repr(set(modules)))
    result = subprocess.run(
        [sys.executable, "-c", script, "-c", str(stack.toml), *args],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        env={**os.environ, **stack.env},
    )
    head, _, last = result.stdout.rpartition("FNUD-MODULES ")
    assert last, f"no report: {result.stdout}{result.stderr}"
    code, _, modules = last.strip().partition(" ")
    return int(code) if code != "None" else 0, modules.split(), head + result.stderr


def test_thin_commands_import_nothing_of_the_daemon(running: StackDir) -> None:
    for args in (["--help"], ["status"], ["status", "--json"], ["reopen-logs"],
                 ["logs", "uwsgi", "-n", "3"], ["reload", "--app"]):
        code, heavy, output = run_probe(running, *args)
        assert code == 0, (args, output)
        assert heavy == [], (args, heavy)
    for args in (["status"], ["status", "--json"]):  # the call monitors make in a loop
        assert "click" not in run_probe(running, *args, modules=("click",))[1]
    code, heavy, output = run_probe(running, "stop")
    assert code == 0 and "fnud stopped" in output, output
    assert heavy == []
    # without a daemon the same commands keep their exit codes
    assert run_probe(running, "status")[0] == 3
    assert run_probe(running, "reload")[0] == 3


def voluntary_switches(pid: int) -> int:
    """Voluntary context switches of every thread of ``pid`` (went to sleep, woke up)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "status").read_text()
        except OSError:  # a thread that just ended
            continue
        for line in text.splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                total += int(line.split()[1])
    return total


def test_idle_daemon_sleeps(running: StackDir) -> None:
    """Default config ([health] interval 10 s, no [watch]): at most one wakeup a second
    on average over a window that holds a health probe. A count, not a timing."""
    config = load_config(running.toml)
    assert config.health.interval == 10.0 and not config.watch.enabled
    pid = int(running.status()["daemon"]["pid"])  # type: ignore[index]
    time.sleep(1.0)  # let the status call's own wakeups pass (the window is what counts)
    window = config.health.interval + 1  # holds a probe, wherever it begins
    before, began = voluntary_switches(pid), time.monotonic()
    time.sleep(window)
    after, elapsed = voluntary_switches(pid), time.monotonic() - began
    per_second = (after - before) / elapsed
    assert per_second <= 1.0, f"{after - before} wakeups in {elapsed:.1f}s"
    assert running.serving()


def test_log_lines_still_arrive_and_rotation_by_copytruncate(running: StackDir) -> None:
    """The daemon sleeps on inotify, yet relays uWSGI's lines; with the default direct
    log, `reopen-logs` says uWSGI is not reopened and copytruncate is the rotation."""
    logs = running.root / "log"
    line = "spawned uWSGI worker"  # a new uWSGI's (or a respawned worker's) startup line

    def relayed() -> int:
        return running.daemon_log().count(line)

    before = relayed()
    assert running.fnud("reload", "--app").returncode == 0
    wait_for(lambda: relayed() > before, message="the reload's uWSGI lines in fnud.log")
    result = running.fnud("reopen-logs")
    assert result.returncode == 0, result.stderr
    assert "not reopened: uwsgi: " in result.stdout and "copytruncate" in result.stdout
    (logs / "uwsgi.log").write_bytes(b"")  # what copytruncate does after its copy
    before = relayed()
    assert running.fnud("reload", "--app").returncode == 0
    wait_for(lambda: line in (logs / "uwsgi.log").read_text(),
             message="uWSGI writing into the truncated file")
    wait_for(lambda: relayed() > before, message="fnud relaying lines after the truncation")


def test_check_reports_a_uwsgi_built_for_another_python(tmp_path: Path) -> None:
    """The real uwsgi binary next to fnud's python against a venv made from another
    interpreter (Debian's /usr/bin/python3 when fnud runs on another one)."""
    other = "/usr/bin/python3"
    if not os.access(other, os.X_OK) or interpreter_prefix(other, os.environ) == sys.base_prefix:
        pytest.skip("needs a second Python install beside fnud's")
    venv = tmp_path / "venv"
    subprocess.run([other, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    errors = [f.format() for f in _check(f"virtualenv = {venv}\n") if f.is_error]
    assert len(errors) == 1, errors
    assert "uwsgi.ini:" in errors[0] and sys.base_prefix in errors[0] and "/usr" in errors[0]


def test_check_passes_a_uwsgi_built_for_the_apps_python(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    findings = _check(f"virtualenv = {venv}\n")
    assert not [f for f in findings if "embeds" in f.message], findings


def _check(extra_ini: str) -> list[Finding]:
    """fnud check's findings (nginx -t and the binaries included) for a test stack."""
    stack = make_stack_dir(extra_ini=extra_ini)
    try:
        return check_all(stack.toml, run_nginx_test=True, check_ports=False)
    finally:
        shutil.rmtree(stack.root, ignore_errors=True)
