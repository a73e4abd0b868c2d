"""state.json: what a restarted daemon needs to adopt the programs a killed one left.

One typed record, one reader and one writer. The reader takes any file an older fnud
wrote (the keys have not changed) and never raises: what it cannot read is left out,
and the daemon then starts afresh instead of adopting.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supervisor.common.files import read_json, write_json
from supervisor.runtime.release import Release


@dataclass(frozen=True)
class ProgramRecord:
    pid: int
    started: float  # wall-clock time of its spawn (0.0: unknown)


@dataclass(frozen=True)
class Other:
    """An app-server generation that was not serving (warm for a rollback, starting,
    retiring) when the state was written: a restarted daemon stops it."""

    generation: int
    pid: int
    started: float
    paused: bool


@dataclass(frozen=True)
class StackState:
    programs: Mapping[str, ProgramRecord] = field(default_factory=dict)
    ini_digest: str = ""  # the app server's config as it was last started or reloaded
    nginx_digest: str = ""
    generation: int = 1  # the serving app-server generation
    release: Release | None = None  # what that generation pinned (rollback after adoption)
    # {program: {address: fd}}: what the masters inherited, to take back after adoption
    sockets: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    others: tuple[Other, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            name: {"pid": record.pid, "started": record.started}
            for name, record in self.programs.items()
        }
        data.update({
            "ini_digest": self.ini_digest, "nginx_digest": self.nginx_digest,
            "generation": self.generation,
            "release": self.release.to_dict() if self.release is not None else None,
            "sockets": {name: dict(fds) for name, fds in self.sockets.items()},
            "others": [{"generation": o.generation, "pid": o.pid, "started": o.started,
                        "paused": o.paused} for o in self.others],
        })
        return data

    @classmethod
    def from_json(cls, data: Any, programs: tuple[str, ...] | None = None) -> StackState:
        """``programs``: the names whose records to read (None: every program recorded;
        the other keys are known)."""
        if not isinstance(data, dict):
            return cls()
        generation = data.get("generation")
        names = programs if programs is not None else tuple(
            name for name in data if isinstance(name, str) and name not in _KEYS
        )
        return cls(
            programs={
                name: record for name in names
                if (record := _record(data.get(name))) is not None
            },
            ini_digest=_text(data.get("ini_digest")),
            nginx_digest=_text(data.get("nginx_digest")),
            generation=generation if isinstance(generation, int) and generation > 0 else 1,
            release=Release.from_dict(data.get("release")),
            sockets=_sockets(data.get("sockets")),
            others=_others(data.get("others")),
        )


_KEYS = frozenset({"ini_digest", "nginx_digest", "generation", "release", "sockets"})


def _record(entry: Any) -> ProgramRecord | None:
    if not isinstance(entry, dict) or type(entry.get("pid")) is not int or entry["pid"] <= 0:
        return None
    started = entry.get("started")
    if isinstance(started, bool) or not isinstance(started, (int, float)):
        started = 0.0
    return ProgramRecord(entry["pid"], float(started))


def _others(value: Any) -> tuple[Other, ...]:
    out = []
    for entry in value if isinstance(value, list) else []:
        record = _record(entry)
        generation = entry.get("generation") if isinstance(entry, dict) else None
        if record is not None and type(generation) is int:
            out.append(Other(generation, record.pid, record.started, entry.get("paused") is True))
    return tuple(out)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _sockets(value: Any) -> dict[str, dict[str, int]]:
    if not isinstance(value, dict):
        return {}
    return {
        name: {key: fd for key, fd in fds.items() if type(fd) is int}
        for name, fds in value.items()
        if isinstance(name, str) and isinstance(fds, dict)
    }


def load(path: Path, programs: tuple[str, ...] | None = None) -> StackState:
    """What the last daemon recorded; an empty state when there is nothing readable."""
    return StackState.from_json(read_json(path), programs)


def save(path: Path, state: StackState) -> None:
    write_json(path, state.to_json())


def clear(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
