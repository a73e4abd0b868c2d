"""Adoption: programs a killed daemon left running are watched instead of started anew."""

from __future__ import annotations

import time

from supervisor import logsetup, survivors
from supervisor.stack import Stack


async def adopt(stack: Stack, found: dict[str, int]) -> set[str]:
    """Take over ``found`` ({program: master pid}, from :func:`survivors.find`); restore
    what the running processes were started with. Returns the adopted names."""
    state = survivors.load_state(stack.paths)
    for name, pid in found.items():
        entry = state.get(name)
        started = entry.get("started") if isinstance(entry, dict) else None
        await stack.programs[name].adopt(pid, float(started or time.time()))
    if "uwsgi" in found:
        stack.ini_digest = str(state.get("ini_digest", ""))
    if "nginx" in found:
        stack.nginx_digest = str(state.get("nginx_digest", ""))
    if found:
        logsetup.get("daemon").info(
            "adopted programs left running by a previous daemon",
            programs={name: stack.programs[name].pid for name in sorted(found)},
        )
    return set(found)
