"""The command registry: every operation fnud can be asked for, one object each.

Every door dispatches here: the control socket (the CLI; it waits for the answer and
reads the progress), signals (SIGTERM stop, SIGHUP reload, SIGUSR1 reopen-logs), saved
and touched files (reload), and the status page's buttons (reload, rollback). A door
that cannot wait (a signal, a save, a button) starts the command and gets back whether
it was accepted; the command itself does the same whoever asked.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from typing import Any, ClassVar, Protocol

from supervisor.common.progress import Emit
from supervisor.control.server import CommandError, json_type
from supervisor.daemon.phase import Phase
from supervisor.daemon.reloads import Reloads
from supervisor.reload.request import OK, ROLLED_BACK, ReloadRequest

Args = Mapping[str, Any]
Spawn = Callable[[Coroutine[Any, Any, Any], str], "asyncio.Task[Any]"]
#: the arguments a command takes, each with the one Python type its JSON value must have
ArgTypes = Mapping[str, type]
_TYPE_WORDS = {bool: "true or false", str: "a string", int: "a whole number"}


class Command(Protocol):
    name: str
    started: str  # what a door that does not wait says once it is accepted
    arg_types: ClassVar[ArgTypes]

    def refusal(self, args: Args) -> str:
        """Why the command cannot run now ('' when it can): checked before it starts,
        at every door."""
        ...

    async def run(self, args: Args, emit: Emit) -> Any:
        """Do it; the answer for the CLI (raises CommandError with one line)."""
        ...


class Registry:
    def __init__(self, commands: Iterable[Command], spawn: Spawn, log: Any) -> None:
        self.commands = {command.name: command for command in commands}
        self.spawn = spawn
        self.log = log

    def __contains__(self, name: str) -> bool:
        return name in self.commands

    async def call(self, name: str, args: Args, emit: Emit) -> Any:
        """Run ``name`` and wait for its answer (the control socket)."""
        command = self._get(name)
        refusal = bad_args(command, args) or command.refusal(args)
        if refusal:
            raise CommandError(refusal)
        return await command.run(args, emit)

    def start(self, name: str, args: Args) -> tuple[bool, str]:
        """Start ``name`` without waiting (signals, saves, the page's buttons): (accepted,
        one line); its progress and outcome go to fnud's log."""
        command = self._get(name)
        refusal = bad_args(command, args) or command.refusal(args)
        if refusal:
            self.log.info("command not accepted", command=name, reason=refusal)
            return False, refusal
        self.spawn(self._logged(command, args), name)
        return True, command.started

    async def _logged(self, command: Command, args: Args) -> None:
        async def emit(text: str) -> None:
            self.log.info(text, command=command.name)

        try:
            await command.run(args, emit)
        except CommandError as exc:
            self.log.error("command failed", command=command.name, reason=str(exc))

    def _get(self, name: str) -> Command:
        command = self.commands.get(name)
        if command is None:
            known = ", ".join(sorted(self.commands))
            raise CommandError(f"unknown command {_clipped(name)} (known: {known})")
        return command


def _clipped(text: str, size: int = 40) -> str:
    return repr(text[:size]) + ("..." if len(text) > size else "")


def bad_args(command: Command, args: Args) -> str:
    """What is wrong with ``args`` for ``command``, on one line ('' when nothing)."""
    for key, value in args.items():
        wanted = command.arg_types.get(key)
        if wanted is None:
            takes = ", ".join(sorted(command.arg_types)) or "none"
            return f"{command.name}: no argument {_clipped(key)} (it takes: {takes})"
        if type(value) is not wanted:  # exactly: true is no number, 1 is no boolean
            shown = json.dumps(value)
            shown = shown if len(shown) <= 40 else shown[:40] + "..."
            return (f"{command.name}: {key} must be {_TYPE_WORDS.get(wanted, wanted.__name__)}, "
                    f"not {json_type(value)} ({shown})")
    return ""


def _running(phase: Callable[[], Phase], what: str) -> str:
    current = phase()
    return "" if current is Phase.RUNNING else f"cannot {what} while {current.value}"


def _trigger(args: Args, default: str) -> str:
    """Who asked, as the status page's history shows it."""
    trigger = args.get("trigger")
    return trigger if isinstance(trigger, str) and trigger else default


class Ping:
    name = "ping"
    started = "ping"
    arg_types: ClassVar[ArgTypes] = {}

    def __init__(self, answer: Callable[[], dict[str, Any]]) -> None:
        self.answer = answer

    def refusal(self, args: Args) -> str:
        return ""

    async def run(self, args: Args, emit: Emit) -> Any:
        return self.answer()


class Status:
    """Never waits for an operation: it reads what is there."""

    name = "status"
    started = "status read"
    arg_types: ClassVar[ArgTypes] = {}

    def __init__(self, status: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        self.status = status

    def refusal(self, args: Args) -> str:
        return ""

    async def run(self, args: Args, emit: Emit) -> Any:
        return await self.status()


class Stop:
    name = "stop"
    started = "stopping"
    arg_types: ClassVar[ArgTypes] = {}

    def __init__(self, shutdown: Callable[[], Awaitable[None]], message: str) -> None:
        self.shutdown = shutdown
        self.message = message

    def refusal(self, args: Args) -> str:
        return ""

    async def run(self, args: Args, emit: Emit) -> Any:
        await emit(self.message)
        await asyncio.shield(self.shutdown())
        return {"stopped": True}


class ReopenLogs:
    name = "reopen-logs"
    started = "reopening the logs"
    arg_types: ClassVar[ArgTypes] = {}

    def __init__(self, reopen: Callable[[], Awaitable[dict[str, list[str]]]]) -> None:
        self.reopen = reopen

    def refusal(self, args: Args) -> str:
        return ""

    async def run(self, args: Args, emit: Emit) -> Any:
        return await self.reopen()


class Reload:
    """A gated reload. Args: nginx, app, force_nginx (bools), no_wait (return at the
    switch), reason, trigger."""

    name = "reload"
    started = "reload queued: the timeline shows its result"
    arg_types: ClassVar[ArgTypes] = {
        "nginx": bool, "app": bool, "force_nginx": bool, "no_wait": bool,
        "reason": str, "trigger": str,
    }

    def __init__(self, reloads: Reloads, phase: Callable[[], Phase]) -> None:
        self.reloads = reloads
        self.phase = phase

    def refusal(self, args: Args) -> str:
        return _running(self.phase, "reload")

    async def run(self, args: Args, emit: Emit) -> Any:
        request = ReloadRequest(
            nginx=bool(args.get("nginx", True)),
            app=bool(args.get("app", True)),
            force_nginx=bool(args.get("force_nginx", False)),
            reason=str(args.get("reason") or "fnud reload"),
            trigger=_trigger(args, "cli"),
        )
        ticket = self.reloads.submit(request, emit)
        if args.get("no_wait"):
            early = await ticket.switch_or_result()
            if early is None:
                return {"result": OK, "message": "switched; settling in the background"}
        result = await ticket.result()
        if result.result != OK:
            raise CommandError(f"{result.result}: {result.message}")
        return result.as_dict()


class Rollback:
    """Back to the previous release (generation mode). Never merges with a reload."""

    name = "rollback"
    started = "rollback started: the timeline shows its result"
    arg_types: ClassVar[ArgTypes] = {"reason": str, "trigger": str}

    def __init__(
        self, reloads: Reloads, phase: Callable[[], Phase], unavailable: Callable[[], str]
    ) -> None:
        """``unavailable()``: why this stack cannot roll back ('' when it can)."""
        self.reloads = reloads
        self.phase = phase
        self.unavailable = unavailable

    def refusal(self, args: Args) -> str:
        why = self.unavailable()
        if why:
            return f"rollback is not available: {why}"
        return _running(self.phase, "roll back")

    async def run(self, args: Args, emit: Emit) -> Any:
        request = ReloadRequest(
            nginx=False, app=True, reason=str(args.get("reason") or "fnud rollback"),
            rollback=True, trigger=_trigger(args, "cli"),
        )
        result = await self.reloads.submit(request, emit).result()
        # during a settle, the settling generation was what went back, as asked
        if result.result not in (OK, ROLLED_BACK):
            raise CommandError(f"{result.result}: {result.message}")
        return result.as_dict()
