"""TODO."""

from __future__ import annotations

import pytest

from supervisor.common.childenv import child_env
from supervisor.process.states import TRANSITIONS, State, TransitionError, check_transition
from supervisor.uwsgi.env import child_env as uwsgi_env


def test_child_env_is_scrubbed() -> None:
    environ = {"PATH": "/bin", "NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "1", "LISTEN_PID": "1",
               "UWSGI_PROCESSES": "9", "GUNICORN_CMD_ARGS": "--daemon"}
    assert child_env(environ) == {
        "PATH": "/bin", "UWSGI_PROCESSES": "9", "GUNICORN_CMD_ARGS": "--daemon"
    }
    assert uwsgi_env(environ) == {"PATH": "/bin", "GUNICORN_CMD_ARGS": "--daemon"}
    assert child_env(environ, ("GUNICORN_",)) == {"PATH": "/bin", "UWSGI_PROCESSES": "9"}


def test_transition_table_covers_every_state_and_rejects_illegal_moves() -> None:
    assert set(TRANSITIONS) == set(State)
    check_transition("x", State.STOPPED, State.STARTING)
    with pytest.raises(TransitionError):
        check_transition("x", State.STOPPED, State.RUNNING)
    with pytest.raises(TransitionError):
        check_transition("x", State.STOPPING, State.RUNNING)
