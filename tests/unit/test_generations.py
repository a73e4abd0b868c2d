"""Generations without processes: the settle's facts on a fake clock, and the switch,
settle, rollback and retire carried out on fake generations made by an injected factory
(as honcho's Manager takes its process constructor)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from supervisor.appserver.port import CannotPause, WorkersUnknown
from supervisor.appserver.workers import Stats, Worker
from supervisor.config.parse import load_config
from supervisor.health.probe import ProbeResult
from supervisor.policy.settle import SettleLimits
from supervisor.process.states import State
from supervisor.reload import settle
from supervisor.reload.generations import Generations, SwitchError
from supervisor.reload.request import RolledBack
from supervisor.runtime.release import Release
from supervisor.stack.plan import Plan
from supervisor.stack.stack import Stack
from testkit import stackfiles


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def wait(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)  # others run meanwhile, as they would in real time


def stats(*workers: tuple[int, int], queue: int = 0) -> Stats:
    """workers: (pid, respawns)"""
    return Stats(1, queue, tuple(
        Worker(i, pid, "idle", True, 1, 0, 0, 0, respawns)
        for i, (pid, respawns) in enumerate(workers, start=1)
    ))


@dataclass
class FakeDriver:
    number: int
    release: str = "/srv/app"
    display = "fake"
    paused: bool = False
    can_pause: bool = True
    calls: list[str] = field(default_factory=list)
    facts: list[Stats] = field(default_factory=lambda: [stats((10, 0), (11, 0))])
    discarded: bool = False  # its files removed

    def pinned(self) -> Release:
        return Release(self.number, self.release, ("[uwsgi]\n", {}), None)

    def discard(self) -> None:
        self.discarded = True

    async def workers(self) -> Stats:
        if not self.facts:
            raise WorkersUnknown("gone")
        return self.facts[0] if len(self.facts) == 1 else self.facts.pop(0)

    async def pause(self, pid: int) -> None:
        if not self.can_pause:
            raise CannotPause("its workers cannot pause")
        self.paused = True
        self.calls.append("pause")

    async def resume(self, pid: int) -> None:
        self.paused = False
        self.calls.append("resume")

    def answer(self, line: str) -> tuple[int, int] | None:
        pid, _, status = line.partition(" ")
        return (int(pid), int(status)) if status else None


@dataclass(eq=False)
class FakeGeneration:
    """What Generations uses of a program; it starts at once unless told otherwise."""

    driver: FakeDriver
    ready: bool = True
    state: State = State.STOPPED
    pid: int = 0
    spawned_wall: float = 0.0
    echo: bool = True
    start_timeout: float = 30.0
    last_exit: str = ""
    why: str = ""
    observers: list[Any] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    followed: bool = True  # its log
    name = "uwsgi"

    @property
    def running(self) -> bool:
        return self.state is State.RUNNING

    async def spawn(self) -> None:
        self.state, self.pid = (State.RUNNING, 100 + self.driver.number) if self.ready else (
            State.FATAL, 0
        )
        self.last_exit = "" if self.ready else "exited with code 22: no app"

    async def wait_state(self, accept: Any, timeout: float) -> bool:
        return True

    async def stop(self, deadline: float) -> None:
        self.state = State.STOPPED
        self.driver.calls.append("stop")

    def children(self) -> set[int]:
        return {w.pid for w in self.driver.facts[0].workers} if self.driver.facts else set()

    def drain(self) -> None:
        for line in self.lines:
            for observe in self.observers:
                observe(line)
        self.lines.clear()

    def unfollow(self) -> None:
        self.drain()
        self.followed = False

    def take_over_log(self, previous: Any) -> None:
        previous.drain()


class Emits:
    def __init__(self) -> None:
        self.lines: list[str] = []

    async def __call__(self, text: str) -> None:
        self.lines.append(text)


@pytest.fixture
def stack(tmp_path: Path) -> Stack:
    (tmp_path / "fnud.toml").write_text(
        '[fnud]\nruntime_dir = "run"\nallow_root = true\n[reload]\nsettle = 5\n'
    )
    (tmp_path / "uwsgi.ini").write_text(stackfiles.uwsgi_ini(3031, 2))
    (tmp_path / "nginx.conf").write_text(stackfiles.nginx_conf(8080, 3031))
    (tmp_path / "run").mkdir()
    stack = Stack(Plan(load_config(tmp_path / "fnud.toml"), {}), lambda event: None)
    serving = FakeGeneration(FakeDriver(1))
    serving.state, serving.pid = State.RUNNING, 101
    stack.app = serving  # type: ignore[assignment]
    return stack


def generations(stack: Stack, clock: Clock, probes: list[bool], made: list[Any],
                ready: bool = True) -> Generations:
    def make(number: int, source: Release | None) -> Any:
        gen = FakeGeneration(FakeDriver(number, release=source.directory if source else
                                        f"/srv/release-{number}"), ready=ready)
        made.append(gen)
        return gen

    async def probe(prog: Any) -> ProbeResult:
        ok = probes.pop(0) if probes else True
        return ProbeResult(ok, None if ok else "app", "" if ok else "502")

    return Generations(stack, make=make, probe_fn=probe, clock=clock, wait=clock.wait)


def test_a_quiet_settle_retires_the_previous_generation(stack: Stack) -> None:
    clock, made, emits = Clock(), [], Emits()
    gens = generations(stack, clock, [], made)
    old = stack.app
    replaced, how = asyncio.run(gens.reload(emits, lambda: None))
    new = made[0]
    assert (replaced, how) == (2, "generation 2")
    assert stack.app is new and old.driver.calls == ["pause", "stop"]
    assert not old.followed  # its log no longer followed
    assert old.driver.discarded and not new.driver.discarded  # its files, not the new one's
    assert gens.previous is not None and gens.previous.number == 1
    assert clock.now >= 1005.0  # the whole settle, on the fake clock
    assert stack.others == []


def test_crash_loop_during_the_settle_rolls_back_to_the_warm_generation(stack: Stack) -> None:
    clock, made = Clock(), []
    gens = generations(stack, clock, [], made)
    old = stack.app

    def crashing(number: int, source: Release | None) -> Any:
        gen = FakeGeneration(FakeDriver(number))
        gen.driver.facts = [stats((20, 0), (21, 0)), stats((22, 2), (21, 1))]
        made.append(gen)
        return gen

    gens.make = crashing
    with pytest.raises(RolledBack, match=r"generation 2 rolled back: 3 worker deaths"):
        asyncio.run(gens.reload(Emits(), lambda: None))
    assert stack.app is old and old.driver.calls == ["pause", "resume"]
    assert made[0].state is State.STOPPED and made[0] not in stack.others
    assert not made[0].followed  # it follows its log no more
    assert made[0].driver.discarded and not old.driver.discarded
    assert clock.now < 1005.0  # decided before the settle's end


def test_failing_probes_roll_back_but_nginxs_own_failures_do_not(stack: Stack) -> None:
    clock, made = Clock(), []
    gens = generations(stack, clock, [False, False], made)
    with pytest.raises(RolledBack, match="2 health probes failed in a row"):
        asyncio.run(gens.reload(Emits(), lambda: None))


def test_a_rollback_asked_during_the_settle_rolls_back_at_once(stack: Stack) -> None:
    clock, made = Clock(), []
    gens = generations(stack, clock, [], made)
    old = stack.app

    async def body() -> None:
        async def ask() -> None:
            while gens.warm is None or clock.now < 1001:
                await asyncio.sleep(0)
            gens.interrupts.rollback.set()  # what a `fnud rollback` does then

        asker = asyncio.create_task(ask())
        try:
            await gens.reload(Emits(), lambda: None)
        finally:
            await asker

    with pytest.raises(RolledBack, match="fnud rollback asked for it"):
        asyncio.run(body())
    assert stack.app is old and clock.now < 1005.0


def test_another_reload_ends_the_settle_early_and_keeps_the_new_one(stack: Stack) -> None:
    clock, made, emits = Clock(), [], Emits()
    gens = generations(stack, clock, [], made)
    gens.interrupts.end.set()
    asyncio.run(gens.reload(emits, lambda: None))
    assert stack.app is made[0]
    assert "settle ended early: another reload is waiting" in emits.lines


def test_a_generation_that_never_serves_is_stopped_and_the_old_one_kept(stack: Stack) -> None:
    clock, made = Clock(), []
    gens = generations(stack, clock, [], made, ready=False)
    old = stack.app
    with pytest.raises(SwitchError, match="generation 2 not ready after 30s: exited with code 22"):
        asyncio.run(gens.reload(Emits(), lambda: None))
    assert stack.app is old and old.driver.calls == [] and stack.others == []


def test_the_warm_one_dying_during_the_settle_keeps_the_new_one(stack: Stack) -> None:
    clock, made = Clock(), []
    gens = generations(stack, clock, [], made)
    old = stack.app

    class Crashing(FakeDriver):
        async def workers(self) -> Stats:
            if len(self.facts) == 1:
                old.state = State.STOPPED  # the paused one is gone by now too
            return await super().workers()

    def dies(number: int, source: Release | None) -> Any:
        gen = FakeGeneration(Crashing(number))
        gen.driver.facts = [stats((20, 0)), stats((20, 5))]
        made.append(gen)
        return gen

    gens.make = dies
    with pytest.raises(SwitchError, match="generation 1 died during the settle"):
        asyncio.run(gens.reload(Emits(), lambda: None))
    assert stack.app is made[0]


def test_the_error_share_counts_only_the_new_generations_answers() -> None:
    clock = Clock()
    counter = settle.RequestCounter(FakeDriver(2).answer)
    lines = [f"{20 if i % 2 else 99} {500 if i < 8 else 200}" for i in range(60)]
    stats_now = stats((20, 0))

    async def workers() -> Stats:
        return stats_now

    async def probe() -> ProbeResult:
        return ProbeResult(True)

    def drain() -> None:
        for line in lines:
            counter.observe(line)
        lines.clear()

    watch = settle.Watch(workers, probe, lambda: True, drain, counter, clock)
    verdict = asyncio.run(settle.settle(watch, 5, SettleLimits(), settle.Interrupts(), clock.wait))
    assert counter.requests == 30 and counter.errors == 4  # pid 99 is another generation's
    assert verdict == "4 of 30 answers were 5xx (13% > 5%)"


def test_without_a_pause_the_old_one_stops_and_a_rollback_starts_its_release(
    stack: Stack,
) -> None:
    clock, made, emits = Clock(), [], Emits()
    gens = generations(stack, clock, [], made)
    old = stack.app
    old.driver.can_pause = False

    def crashing(number: int, source: Release | None) -> Any:
        gen = FakeGeneration(FakeDriver(number, release=source.directory if source else
                                        f"/srv/release-{number}"))
        if source is None:  # the new release crash-loops; the old one, started again, not
            gen.driver.facts = [stats((20, 0), (21, 0)), stats((22, 2), (21, 1))]
        made.append(gen)
        return gen

    gens.make = crashing
    with pytest.raises(RolledBack, match=r"generation 2 rolled back: 3 worker deaths"):
        asyncio.run(gens.reload(emits, lambda: None))
    again = made[1]
    assert old.driver.calls == ["stop"]  # stopped at the switch, never paused
    assert again.driver.number == 3 and again.driver.release == "/srv/app"  # its release
    assert stack.app is again and made[0].state is State.STOPPED
    assert "settling for 5s (previous generation stopped, its release pinned)" in emits.lines


def test_without_a_pause_a_quiet_settle_remembers_the_stopped_release(stack: Stack) -> None:
    clock, made = Clock(), []
    gens = generations(stack, clock, [], made)
    stack.app.driver.can_pause = False
    asyncio.run(gens.reload(Emits(), lambda: None))
    assert stack.app is made[0] and len(made) == 1
    assert gens.previous is not None and gens.previous.directory == "/srv/app"
    assert clock.now >= 1005.0  # it settled all the same


def test_a_retired_or_refused_generation_stops_following_the_log(stack: Stack) -> None:
    """Every reload left the old generation's tail open: uwsgi.log and an inotify fd
    more in the daemon each time (seen by the control fuzz test's fd count)."""
    clock, made = Clock(), []
    old = stack.app
    asyncio.run(generations(stack, clock, [], made).reload(Emits(), lambda: None))
    assert (old.followed, made[0].followed) == (False, True)  # type: ignore[attr-defined]
    refused: list[Any] = []
    with pytest.raises(SwitchError):
        asyncio.run(generations(stack, clock, [], refused, ready=False).reload(
            Emits(), lambda: None))
    assert (refused[0].followed, stack.app.followed) == (False, True)  # type: ignore[attr-defined]
