"""TODO."""

from __future__ import annotations

import pytest

from supervisor.common.childenv import child_env
from supervisor.process.states import TRANSITIONS, State, TransitionError, check_transition


def test_child_env_is_scrubbed() -> None:
    env = child_env(
        {"PATH": "/bin", "NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "1", "UWSGI_PROCESSES": "9"}
    )
    assert env == {"PATH": "/bin"}


def test_transition_table_covers_every_state_and_rejects_illegal_moves() -> None:
    assert set(TRANSITIONS) == set(State)
    check_transition("x", State.STOPPED, State.STARTING)
    with pytest.raises(TransitionError):
        check_transition("x", State.STOPPED, State.RUNNING)
    with pytest.raises(TransitionError):
        check_transition("x", State.STOPPING, State.RUNNING)
