"""One supervised program without a process: its environment, its state machine,
following its log."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from supervisor.common.childenv import child_env
from supervisor.process.program import Program
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


class _Driver:
    name = "uwsgi"

    def log_level(self, line: str) -> str:
        return "info"


def test_unfollow_reads_the_last_lines_and_closes_the_tails_fds(tmp_path: Path) -> None:
    log = tmp_path / "uwsgi.log"
    log.write_text("")

    def fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    async def scenario() -> tuple[int, int, int]:
        prog: Program[Any] = Program(_Driver(), lambda event: None, log_path=log)  # type: ignore[arg-type]
        before = fds()
        prog._follow(0, 1)
        with log.open("a") as out:
            out.write("one\n")
        for _ in range(100):  # its loop reads the line, then sleeps on inotify
            await asyncio.sleep(0.01)
            if prog.output and prog._tail is not None and prog._tail.notify_fd >= 0:
                break
        following = fds()
        with log.open("a") as out:
            out.write("two\n")
        prog.unfollow()
        await asyncio.sleep(0.05)  # the loop ends
        assert not prog._tasks and list(prog.output) == ["one", "two"]
        return before, following, fds()

    before, following, after = asyncio.run(scenario())
    assert following == before + 2 and after == before  # the log and inotify
