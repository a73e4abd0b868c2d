"""The daemon's own life: one start, one run, one stop."""

from __future__ import annotations

import enum

from supervisor.process.states import TransitionError


class Phase(enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"


PHASES: dict[Phase, frozenset[Phase]] = {
    Phase.STARTING: frozenset({Phase.RUNNING, Phase.STOPPING}),
    Phase.RUNNING: frozenset({Phase.STOPPING}),
    Phase.STOPPING: frozenset(),
}


def check_phase(old: Phase, new: Phase) -> None:
    if new not in PHASES[old]:
        raise TransitionError("daemon", old, new)
