"""gunicorn runs as ``python -m gunicorn`` from the app's own interpreter: it must be
installed there (not only beside fnud). One subprocess (about 0.1 s): `fnud check` only,
not the daemon's gate, which finds out when the master does not start."""

from __future__ import annotations

import os
from pathlib import Path

from supervisor.checks.finding import Finding, error
from supervisor.checks.inputs import Inputs
from supervisor.checks.probe import probe_user, run_probe
from supervisor.config.parse import locate
from supervisor.stack.plan import Plan

SCRIPT = "import gunicorn; print('fnud-gunicorn', gunicorn.__version__)"
TIMEOUT = 15.0


def check(inputs: Inputs) -> list[Finding]:
    config = inputs.config
    python = Plan(config, inputs.environ).gunicorn_python()
    if not os.access(python, os.X_OK):
        return []  # fnud.toml's check reports it
    allowed, run_as = probe_user(inputs)
    if not allowed:
        return []  # never as root: fnud.toml's checks say why no user runs it
    result = run_probe([python, "-c", SCRIPT], inputs.environ, TIMEOUT, run_as)
    if result is None:
        return []
    if "fnud-gunicorn" in result.stdout:
        return []
    line = locate(inputs.toml_text, "gunicorn", "python")
    pip = Path(python).parent / "pip"
    reason = (result.stderr.strip().splitlines() or [f"exit code {result.returncode}"])[-1]
    return [error(
        config.path, line, f"gunicorn cannot be imported by {python}: {reason}",
        f"install it into the app's virtualenv: {pip} install gunicorn",
    )]
