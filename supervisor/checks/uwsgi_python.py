"""The uWSGI wheel trap: a uwsgi binary built for one Python, an app venv made from another.

pip caches the uwsgi wheel it compiled; a venv made from another interpreter (pyenv's
against Debian's /usr/bin/python3) gets a uwsgi linked to the first one's libpython, and
every import of the app fails ("No module named 'math'"). Both sides are asked, not
guessed: the binary runs a two-line script (``uwsgi --pyrun``: its embedded interpreter's
``sys.base_prefix``), the app's interpreter (the ini's virtualenv, else ``[uwsgi] python``,
else fnud's own, as the preflight picks it) prints its own. Different prefixes: one error.
Anything that cannot be asked (no python plugin in the binary, a missing interpreter, a
timeout) gives no finding here; other checks report missing files.

A subprocess each (about 0.2 s): run by `fnud check` only, not by the daemon's gate.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from supervisor.checks.finding import Finding, error
from supervisor.checks.inputs import Inputs
from supervisor.checks.probe import probe_user, run_probe
from supervisor.common.runas import RunAs
from supervisor.config.parse import locate
from supervisor.uwsgi import driver as uwsgi
from supervisor.uwsgi.app import app_spec

MARK = "fnud-base-prefix:"
SCRIPT = f"import sys\nprint({MARK!r}, sys.base_prefix, flush=True)\n"
VENV_KEYS = ("virtualenv", "venv", "home", "pyhome", "H")
TIMEOUT = 15.0


def _prefix(
    argv: Sequence[str], environ: Mapping[str, str], run_as: RunAs | None
) -> str | None:
    """The base prefix printed by ``argv`` (which runs SCRIPT, as the app's user), or
    None."""
    result = run_probe(argv, environ, TIMEOUT, run_as)
    if result is None:
        return None
    for line in (result.stdout + "\n" + result.stderr).splitlines():
        if line.startswith(MARK):
            return line[len(MARK):].strip() or None
    return None


def embedded_prefix(
    binary: str, environ: Mapping[str, str], run_as: RunAs | None = None
) -> str | None:
    """``sys.base_prefix`` of the Python the uwsgi binary embeds."""
    with tempfile.TemporaryDirectory(prefix="fnud-check-") as tmp:
        os.chmod(tmp, 0o755)  # the app's user reads the script
        script = Path(tmp) / "prefix.py"
        script.write_text(SCRIPT)
        script.chmod(0o644)
        return _prefix([binary, "--pyrun", str(script)], environ, run_as)


def interpreter_prefix(
    python: str, environ: Mapping[str, str], run_as: RunAs | None = None
) -> str | None:
    """``sys.base_prefix`` of an interpreter (a venv's python gives its base's)."""
    return _prefix([python, "-I", "-c", SCRIPT], environ, run_as)


def same_python(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def check(inputs: Inputs) -> list[Finding]:
    config = inputs.config
    binary = uwsgi.find_binary(config.uwsgi.binary)
    if binary is None or inputs.ini is None:
        return []  # reported by the fnud.toml and ini checks
    spec = app_spec(inputs.ini, inputs.ini_path, config.uwsgi.python)
    if not os.access(spec.python, os.X_OK):
        return []  # the ini check reports a venv that is not there
    environ = {k: v for k, v in inputs.environ.items() if not k.startswith("PYTHON")}
    allowed, run_as = probe_user(inputs)
    if not allowed:
        return []  # never as root: fnud.toml's checks say why no user runs it
    embedded = embedded_prefix(binary, environ, run_as)
    app = interpreter_prefix(spec.python, environ, run_as)
    if embedded is None or app is None or same_python(embedded, app):
        return []
    venv_option = next((opt for key in VENV_KEYS if (opt := inputs.ini.get(key))), None)
    if venv_option is not None:
        where, line = inputs.ini_path, venv_option.line
        what = f"the app's virtualenv ({venv_option.key} = {venv_option.value})"
    else:
        key = "python" if config.uwsgi.python else "binary"
        where, line = config.path, locate(inputs.toml_text, "uwsgi", key)
        what = f"the app's interpreter {spec.python}"
    pip = Path(spec.python).parent / "pip"
    return [error(
        where, line,
        f"uwsgi binary {binary} embeds the Python in {embedded}, but {what} runs on the "
        f"Python in {app}: every import of the app would fail",
        f"rebuild it for that Python without pip's wheel cache: {pip} install "
        f"--no-cache-dir --force-reinstall uwsgi; or set [uwsgi] binary",
    )]
