"""Running the app's interpreter or its server's binary for a check, as the app's user.

`sudo fnud check` and `sudo fnud init` run as root; the app's python (its venv's .pth
files, sitecustomize) and a binary the app's user may have replaced run only as that
user, from the exec on. With no such user (an unknown one, or none while fnud is root
and root is not allowed to run the app), the probe does not run: its check is skipped
and the fnud.toml checks say why.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence

from supervisor.checks.inputs import Inputs
from supervisor.common.runas import RunAs, UnknownUser, popen_as


def probe_user(inputs: Inputs) -> tuple[bool, RunAs | None]:
    """(may the probe run, as whom): as the app's user when fnud is root; as whoever runs
    fnud when it is not root, or root may run the app; not at all otherwise."""
    fnud = inputs.config.fnud
    if os.geteuid() != 0:
        return True, None
    if not fnud.user:
        return fnud.allow_root, None
    try:
        return True, RunAs.resolve(fnud.user, fnud.group)
    except UnknownUser:
        return False, None


def run_probe(
    argv: Sequence[str], environ: Mapping[str, str], timeout: float,
    run_as: RunAs | None = None,
) -> subprocess.CompletedProcess[str] | None:
    """``argv``'s output, run as ``run_as`` (see probe_user) from "/"; None when it could
    not run (or timed out)."""
    try:
        return subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, env=dict(environ),
            stdin=subprocess.DEVNULL, cwd="/", start_new_session=True, **popen_as(run_as),
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
