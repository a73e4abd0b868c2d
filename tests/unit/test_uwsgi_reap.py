"""Which paused uWSGI workers fnud may end: only those whose threads wait out the pause."""

from __future__ import annotations

import os

from supervisor.uwsgi.reap import only_paused

WORKER = 100


def call(text: str) -> list[str]:
    """One /proc/PID/task/TID/syscall line: number, six arguments, stack and pc."""
    return text.split()


SLEEP = call("7 0x0 0x0 0x2710 0x0 0x0 0x0 0x7ffd 0x7f00")  # poll(NULL, 0, 10000)


POLL_FDS = call("7 0x55d0 0x2 0xffffffff 0x0 0x0 0x0 0x7ffd 0x7f00")  # poll on two fds


JOIN_101 = call("202 0x7f10 0x9 0x65 0x0 0x0 0xffffffff 0x7ffd 0x7f00")  # futex on tid 101


GIL = call("202 0x7f10 0x189 0x0 0x0 0x0 0xffffffff 0x7ffd 0x7f00")  # a lock, val 0


NANOSLEEP = call("230 0x1 0x0 0x7f10 0x0 0x0 0x0 0x7ffd 0x7f00")  # time.sleep


def test_every_thread_asleep_in_the_pause_may_end() -> None:
    assert only_paused(WORKER, {100: SLEEP, 101: SLEEP}, "x86_64")


def test_the_main_thread_joining_a_paused_sibling_may_end() -> None:
    assert only_paused(WORKER, {100: JOIN_101, 101: SLEEP}, "x86_64")


def test_a_thread_in_a_request_keeps_the_worker() -> None:
    for busy in (NANOSLEEP, POLL_FDS, GIL, ["running"], ["-1", "0x7ffd", "0x7f00"]):
        assert not only_paused(WORKER, {100: SLEEP, 101: busy}, "x86_64"), busy
    assert not only_paused(WORKER, {100: GIL, 101: SLEEP}, "x86_64")  # main in a request


def test_a_join_only_counts_on_the_main_thread_and_on_a_sibling() -> None:
    assert not only_paused(WORKER, {100: SLEEP, 101: JOIN_101}, "x86_64")
    join_stranger = call("202 0x7f10 0x9 0x3e7 0x0 0x0 0x0 0x7ffd 0x7f00")  # tid 999
    assert not only_paused(WORKER, {100: join_stranger, 101: SLEEP}, "x86_64")
    assert not only_paused(WORKER, {100: JOIN_101}, "x86_64")  # nobody asleep: not ours


def test_unknown_machines_and_unreadable_proc_end_nothing() -> None:
    assert not only_paused(WORKER, {100: SLEEP}, "riscv64")
    assert not only_paused(WORKER, {}, "x86_64")
    assert not only_paused(2**22 + 12345)  # no such process


def test_a_live_python_process_is_never_only_paused() -> None:
    assert not only_paused(os.getpid())  # this thread is running
