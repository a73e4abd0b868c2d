"""One operation at a time, and every reload through one queue: merged, ordered, ended by
a stop, whatever door it came through. No process: the reload itself is a fake that
the test steps through."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from supervisor.daemon import commands
from supervisor.daemon.operations import MOVES, Op, OperationError, Operations
from supervisor.daemon.phase import Phase
from supervisor.daemon.reloads import Reloads
from supervisor.reload.request import OK, REFUSED, ROLLED_BACK, ReloadRequest, ReloadResult
from supervisor.reload.settle import Interrupts


class FakeReloads:
    """Runs queued requests one at a time; each waits until the test releases it."""

    def __init__(self, ops: Operations) -> None:
        self.ops = ops
        self.ran: list[ReloadRequest] = []
        self.gates: list[asyncio.Event] = []
        self.interrupts = Interrupts()
        self.tasks: list[asyncio.Task[Any]] = []
        self.ended: list[tuple[str, str]] = []
        self.reloads = Reloads(ops, self.run, self.end, self.interrupts, self.spawn)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.append(task)
        return task

    async def run(
        self, request: ReloadRequest, emit: Any, switched: Callable[[], None]
    ) -> ReloadResult:
        self.ran.append(request)
        gate = asyncio.Event()
        self.gates.append(gate)
        await emit(f"running {request.reason}")
        switched()
        if not request.rollback:
            self.ops.settling()
        await gate.wait()
        if self.interrupts.rollback.is_set():
            return ReloadResult(ROLLED_BACK, "rolled back", request.reason)
        return ReloadResult(OK, f"did {request.reason}", request.reason, trigger=request.trigger)

    def end(self, request: ReloadRequest, outcome: str, message: str) -> ReloadResult:
        self.ended.append((outcome, message))
        return ReloadResult(outcome, message, request.reason)

    async def until_running(self, count: int) -> None:
        while len(self.gates) < count:
            await asyncio.sleep(0)

    def release(self) -> None:
        self.gates[-1].set()


async def _quiet(_: str) -> None:
    return None


def request(reason: str, trigger: str = "cli", **kwargs: Any) -> ReloadRequest:
    return ReloadRequest(reason=reason, trigger=trigger, **kwargs)


def test_the_moves_name_every_operation() -> None:
    assert set(MOVES) == set(Op)
    assert MOVES[Op.STOPPING] == frozenset()


def test_one_turn_at_a_time_in_arrival_order() -> None:
    async def body() -> list[str]:
        ops = Operations()
        seen: list[str] = []

        async def hold(name: str, op: Op) -> None:
            async with ops.turn(op):
                seen.append(f"{name} {ops.state.value}")
                await asyncio.sleep(0)
                seen.append(f"{name} done")

        await asyncio.gather(hold("a", Op.RELOADING), hold("b", Op.RESTARTING))
        seen.append(ops.state.value)
        return seen

    assert asyncio.run(body()) == ["a reloading", "a done", "b restarting", "b done", "idle"]


def test_the_stop_waits_for_the_turn_then_keeps_it() -> None:
    async def body() -> tuple[bool, Op, bool]:
        ops = Operations()
        release = asyncio.Event()

        async def reload() -> None:
            async with ops.turn(Op.RELOADING):
                await release.wait()

        task = asyncio.create_task(reload())
        await asyncio.sleep(0)
        stop = asyncio.create_task(ops.stop(5.0))
        await asyncio.sleep(0)
        release.set()
        waited = await stop
        await task
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ops.turn(Op.RESTARTING).__aenter__(), 0.05)
        return waited, ops.state, ops.idle

    assert asyncio.run(body()) == (True, Op.STOPPING, False)


def test_a_stop_out_of_patience_cuts_the_operation_short() -> None:
    async def body() -> tuple[bool, bool]:
        ops = Operations()

        async def stuck() -> None:
            async with ops.turn(Op.RELOADING):
                await asyncio.Event().wait()

        task = asyncio.create_task(stuck())
        await asyncio.sleep(0)
        waited = await ops.stop(0.01)
        with pytest.raises(asyncio.CancelledError):
            await task
        return waited, ops.state is Op.STOPPING

    assert asyncio.run(body()) == (False, True)


def test_settling_is_only_a_step_of_a_reload() -> None:
    ops = Operations()
    with pytest.raises(OperationError):
        ops.settling()


def test_requests_waiting_for_their_turn_merge_into_one_follow_up() -> None:
    async def body() -> tuple[list[ReloadRequest], list[ReloadResult]]:
        fake = FakeReloads(Operations())
        first = fake.reloads.submit(request("first"), _quiet)
        await fake.until_running(1)
        second = fake.reloads.submit(request("save", "save", nginx=False), _quiet)
        third = fake.reloads.submit(request("touched", "touch", app=False), _quiet)
        fourth = fake.reloads.submit(request("cli"), _quiet)
        assert second.done is third.done is fourth.done  # one follow-up for all three
        fake.release()
        await fake.until_running(2)
        fake.release()
        results = [await t.result() for t in (first, second, third, fourth)]
        return fake.ran, results

    ran, results = asyncio.run(body())
    assert [r.reason for r in ran] == ["first", "save; touched; cli"]
    merged = ran[1]
    assert merged.nginx and merged.app and merged.trigger == "save+touch+cli"
    assert [r.result for r in results] == [OK] * 4
    assert results[1] == results[2] == results[3]  # the CLI reload got the merged result


def test_a_rollback_never_merges() -> None:
    async def body() -> list[ReloadRequest]:
        ops = Operations()
        fake = FakeReloads(ops)
        async with ops.turn(Op.RESTARTING):  # everything waits
            fake.reloads.submit(request("reload"), _quiet)
            back = fake.reloads.submit(request("back", rollback=True), _quiet)
            fake.reloads.submit(request("again"), _quiet)
            assert fake.reloads.waiting is not None and fake.reloads.waiting.done is not back.done
        for count in (1, 2):
            await fake.until_running(count)
            fake.release()
        await back.result()
        return fake.ran

    ran = asyncio.run(body())
    assert [r.reason for r in ran][:2] == ["reload; again", "back"]


def test_a_reload_during_a_settle_ends_it_and_a_rollback_rolls_it_back() -> None:
    async def body() -> tuple[bool, ReloadResult, ReloadResult]:
        ops = Operations()
        fake = FakeReloads(ops)
        settling = fake.reloads.submit(request("deploy"), _quiet)
        await fake.until_running(1)
        assert ops.state is Op.SETTLING
        back = fake.reloads.submit(request("back", rollback=True), _quiet)
        assert back is settling and fake.interrupts.rollback.is_set()
        follow = fake.reloads.submit(request("next"), _quiet)
        ended = fake.interrupts.end.is_set()
        fake.release()
        result = await back.result()
        fake.interrupts.clear()
        await fake.until_running(2)
        fake.release()
        return ended, result, await follow.result()

    ended, rolled, follow = asyncio.run(body())
    assert ended and rolled.result == ROLLED_BACK and follow.result == OK


def test_a_stop_refuses_what_waits_and_cuts_what_runs() -> None:
    async def body() -> tuple[ReloadResult, ReloadResult]:
        ops = Operations()
        fake = FakeReloads(ops)
        running = fake.reloads.submit(request("running"), _quiet)
        await fake.until_running(1)
        waiting = fake.reloads.submit(request("waiting"), _quiet)
        fake.reloads.close()
        await ops.stop(0.01)
        return await running.result(), await waiting.result()

    running, waiting = asyncio.run(body())
    assert waiting.result == REFUSED and waiting.message == "fnud is stopping"
    assert running.result == "failed" and "cut short" in running.message


def test_no_wait_returns_at_the_switch() -> None:
    async def body() -> Any:
        fake = FakeReloads(Operations())
        reload = commands.Reload(fake.reloads, lambda: Phase.RUNNING)
        answer = await reload.run({"no_wait": True}, _quiet)
        fake.release()
        return answer

    assert asyncio.run(body()) == {"result": OK, "message": "switched; settling in the background"}


def test_every_door_is_refused_the_same_way() -> None:
    async def body() -> list[tuple[bool, str]]:
        fake = FakeReloads(Operations())
        phase = [Phase.STOPPING]
        registry = commands.Registry(
            [
                commands.Reload(fake.reloads, lambda: phase[0]),
                commands.Rollback(
                    fake.reloads, lambda: phase[0], lambda: 'it needs [uwsgi] reload = "generation"'
                ),
            ],
            fake.spawn, _Log(),
        )
        out = [registry.start("reload", {}), registry.start("rollback", {})]
        with pytest.raises(commands.CommandError, match="cannot reload while stopping"):
            await registry.call("reload", {}, _quiet)
        phase[0] = Phase.RUNNING
        out.append(registry.start("rollback", {}))
        out.append(registry.start("reload", {"trigger": "web"}))
        await fake.until_running(1)
        fake.release()
        return out

    out = asyncio.run(body())
    assert out[0] == (False, "cannot reload while stopping")
    assert out[1][0] is False and 'reload = "generation"' in out[1][1]  # checked first
    assert out[2][0] is False and 'reload = "generation"' in out[2][1]
    assert out[3] == (True, "reload queued: the timeline shows its result")


class _Log:
    def info(self, *args: Any, **kwargs: Any) -> None:
        pass

    error = info
