"""A mistake in fnud.toml (ConfigError: file, line, message, hint), and where a section
or key is in the file's text."""

from __future__ import annotations

import re

HINT_SYNTAX = "fix the TOML syntax at this line"
HINT_SPELLING = "check the spelling against fnud's docs/configuration.md"
HINT_README = "see fnud's docs/configuration.md"


class ConfigError(Exception):
    """A user mistake in fnud.toml: where (``path``, ``line``; 0 for the file as a whole),
    what (``message``) and how to fix it (``hint``). ``str()`` is ``file:line: message``."""

    def __init__(self, path: object, line: int, message: str, hint: str = HINT_README) -> None:
        self.path = str(path)
        self.line = line
        self.message = message
        self.hint = hint
        where = f"{self.path}:{line}" if line > 0 else self.path
        super().__init__(f"{where}: {message}")


_HEADER_RE = re.compile(r"^\s*\[\s*([A-Za-z0-9_.-]+)\s*\]")
_KEY_RE = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=")


def locate(text: str, section: str, key: str | None) -> int:
    """Line of ``[section]`` (or of ``key`` inside it); 1 when not found."""
    current = ""
    header_line = 0
    for number, line in enumerate(text.splitlines(), start=1):
        match = _HEADER_RE.match(line)
        if match:
            current = match.group(1)
            if current == section and key is None:
                return number
            if current == section:
                header_line = number
            continue
        if key is not None and current == section:
            kmatch = _KEY_RE.match(line)
            if kmatch and kmatch.group(1) == key:
                return number
    return header_line or 1
