"""A program's states and the transitions allowed between them (after supervisord's
states.py). Every change goes through :func:`check_transition`."""

from __future__ import annotations

import enum


class State(enum.Enum):
    STOPPED = "STOPPED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    BACKOFF = "BACKOFF"
    STOPPING = "STOPPING"
    EXITED = "EXITED"
    FATAL = "FATAL"


S = State

TRANSITIONS: dict[State, frozenset[State]] = {
    S.STOPPED: frozenset({S.STARTING}),
    # ready, died before ready, asked to stop
    S.STARTING: frozenset({S.RUNNING, S.BACKOFF, S.FATAL, S.STOPPING, S.EXITED}),
    # died unexpectedly, asked to stop
    S.RUNNING: frozenset({S.EXITED, S.STOPPING}),
    # retry timer fired, asked to stop, gave up
    S.BACKOFF: frozenset({S.STARTING, S.STOPPED, S.FATAL}),
    S.STOPPING: frozenset({S.STOPPED}),
    # restart scheduled, gave up, stop requested while exited
    S.EXITED: frozenset({S.BACKOFF, S.FATAL, S.STOPPED, S.STARTING}),
    # cool-down retry or manual start, or stop
    S.FATAL: frozenset({S.STARTING, S.STOPPED}),
}


class TransitionError(RuntimeError):
    def __init__(self, program: str, old: enum.Enum, new: enum.Enum) -> None:
        super().__init__(f"{program}: illegal transition {old.value} -> {new.value}")
        self.old = old
        self.new = new


def check_transition(program: str, old: State, new: State) -> None:
    if new not in TRANSITIONS[old]:
        raise TransitionError(program, old, new)
