"""A release as a generation ran it: what `fnud rollback` goes back to, and what a
restarted daemon needs to know of the generation it adopts. Kept as JSON in the runtime
dir (``previous-release.json``, ``state.json``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor.common.files import read_json, write_json


@dataclass(frozen=True)
class Release:
    number: int
    directory: str
    source: tuple[str, dict[int, str]]  # the ini text and pins it ran with
    link: tuple[str, str] | None  # (symlink, its target then) when reached through one

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "directory": self.directory,
                "source": [self.source[0], self.source[1]], "link": self.link}

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
            )
        except (ValueError, KeyError, TypeError, AttributeError, IndexError):
            return None

    def save(self, path: Path) -> None:
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: Path) -> Release | None:
        """What a previous daemon saved; None when there is nothing (readable) there."""
        return cls.from_dict(read_json(path))
