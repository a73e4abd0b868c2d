"""fnud's own logging: following a program's log, the daemon's log file."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import structlog

from supervisor.logs import tail


def test_tail_wakes_on_write_and_on_rotation(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_bytes(b"old\n")

    async def scenario() -> list[str]:
        follower = tail.Tail(log, tail.end_of(log))
        seen: list[str] = []
        waiter = asyncio.ensure_future(follower.changed(settle=0))
        await asyncio.sleep(0.05)
        assert not waiter.done()  # nothing written: it sleeps
        with open(log, "ab") as out:
            out.write(b"one\n")
        await asyncio.wait_for(waiter, 10)
        seen += follower.read_lines()
        log.rename(tmp_path / "x.log.1")
        waiter = asyncio.ensure_future(follower.changed(settle=0))
        await asyncio.sleep(0.05)
        log.write_bytes(b"new\n")
        await asyncio.wait_for(waiter, 10)
        assert follower.rotated()
        follower.close()
        follower = tail.Tail(log, 0)
        seen += follower.read_lines()
        waiter = asyncio.ensure_future(follower.changed(settle=0))
        await asyncio.sleep(0.05)
        follower.close()  # closing wakes a waiter and leaves the loop's fds alone
        await asyncio.wait_for(waiter, 10)
        return seen

    assert asyncio.run(scenario()) == ["one", "new"]


def test_a_new_generations_tail_goes_on_where_the_serving_one_echoed(tmp_path: Path) -> None:
    """Two generations share one log; at the switch the new one echoes from exactly where
    the old one stopped: nothing lost (lines it read silently before), nothing twice."""
    log = tmp_path / "uwsgi.log"
    log.write_bytes(b"old 1\n")
    serving, starting = tail.Tail(log, 0), tail.Tail(log, 6)
    assert serving.read_lines() == ["old 1"]
    with open(log, "ab", buffering=0) as out:
        out.write(b"new spawned\n")
        assert starting.read_lines() == ["new spawned"]  # read while it does not echo
        out.write(b"new ready\npart")
        assert serving.read_lines() == ["new spawned", "new ready"]  # echoed by the old one
        starting.take_over(serving)
        out.write(b"ial\nafter\n")
    assert starting.read_lines() == ["partial", "after"]
    serving.close()
    starting.close()


def test_a_tail_on_another_file_is_not_taken_over(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_bytes(b"one\ntwo\n")
    (tmp_path / "b.log").write_bytes(b"x\n")
    other, mine = tail.Tail(tmp_path / "a.log", 0), tail.Tail(tmp_path / "b.log", 0)
    assert other.read_lines() == ["one", "two"]
    mine.take_over(other)
    assert mine.read_lines() == ["x"]
    other.close()
    mine.close()


def test_the_detached_daemons_log_takes_any_text(tmp_path: Path) -> None:
    """A reload asked with reason "\\udcff" (valid JSON) crashed in its first log call:
    the daemon's log stream was strict UTF-8."""
    from supervisor.cli.start import log_stream
    from supervisor.logs import logsetup

    path = tmp_path / "fnud.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        stream = log_stream(fd)
        logsetup.configure(stream, environ={})
        logsetup.get("reload").info("reload begins", reason="\udcff", trigger="\ud800")
        stream.flush()
    finally:
        os.close(fd)
        structlog.reset_defaults()
    assert "reason=\\udcff trigger=\\ud800" in path.read_text()
