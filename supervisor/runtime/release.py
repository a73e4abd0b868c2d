"""A release as a generation ran it: what `fnud rollback` goes back to, and what a
restarted daemon needs to know of the generation it adopts. Kept as JSON in the runtime
dir (``previous-release.json``, ``state.json``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor.common.files import read_json, write_json


@dataclass(frozen=True)
class Release:
    number: int
    directory: str
    source: tuple[str, dict[int, str]]  # its config text and pins (the adapter's own keys)
    link: tuple[str, str] | None  # (symlink, its target then) when reached through one
    server: str = ""  # the app server that ran it ("": a file from before gunicorn)

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "directory": self.directory,
                "source": [self.source[0], self.source[1]], "link": self.link,
                "server": self.server}

    @classmethod
    def from_dict(cls, data: Any) -> Release | None:
        """None when ``data`` is not a release this module wrote."""
        try:
            text, pins = data["source"]
            link = data["link"]
            return cls(
                int(data["number"]), str(data["directory"]),
                (str(text), {int(line): str(value) for line, value in pins.items()}),
                (str(link[0]), str(link[1])) if link else None,
                str(data.get("server") or ""),
            )
        except (ValueError, KeyError, TypeError, AttributeError, IndexError):
            return None

    def save(self, path: Path) -> None:
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: Path) -> Release | None:
        """What a previous daemon saved; None when there is nothing (readable) there."""
        return cls.from_dict(read_json(path))


def release_link(directory: str) -> tuple[str, str] | None:
    """The symlink the app directory is reached through (``current`` in
    ``current -> releases/<id>``) and its target now; None when there is none."""
    path = Path(directory)
    for candidate in (path, *path.parents):
        try:
            if candidate.is_symlink():
                return str(candidate), os.readlink(candidate)
        except OSError:  # a name too long, a directory we may not read: no link we can use
            return None
    return None
