"""Read a uWSGI ini file the way uWSGI's own parser (core/ini.c) does.

uWSGI strips blanks around keys and values, treats a line whose first non-blank
character is ``;`` or ``#`` as a comment, and does *not* strip inline comments:
``chdir = /srv/app  # dir`` sets chdir to the whole string. Options from the
section ``[uwsgi]`` only are applied. A key may repeat (list options).
Pure functions: the caller reads the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

SECTION = "uwsgi"
_BLANKS = " \t\r"


@dataclass(frozen=True)
class Option:
    key: str
    value: str
    line: int


@dataclass(frozen=True)
class UwsgiIni:
    """The options of one section, in file order, with their line numbers."""

    options: tuple[Option, ...]
    has_section: bool  # at least one option in the section
    headers: tuple[tuple[str, int], ...] = ()  # every ``[name]`` line: (name, line)

    @property
    def section_line(self) -> int:
        """Line of the first ``[uwsgi]`` header; 1 when there is none."""
        return next((line for name, line in self.headers if name == SECTION), 1)

    def get(self, key: str) -> Option | None:
        """The last occurrence of ``key`` (uWSGI's rule for single-valued options)."""
        found = None
        for opt in self.options:
            if opt.key == key:
                found = opt
        return found

    def value(self, key: str, default: str | None = None) -> str | None:
        opt = self.get(key)
        return opt.value if opt is not None else default

    def all(self, key: str) -> list[Option]:
        return [opt for opt in self.options if opt.key == key]

    def __iter__(self) -> Iterator[Option]:
        return iter(self.options)


def parse_ini(text: str, section: str = SECTION) -> UwsgiIni:
    options: list[Option] = []
    headers: list[tuple[str, int]] = []
    current = ""
    has_section = False
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip(_BLANKS)
        if not line:
            continue
        if line.startswith("["):
            current = line[1:-1] if line.endswith("]") else line[1:]
            headers.append((current, number))
            continue
        if line[0] in ";#":
            continue
        key, _, value = line.partition("=")
        if current != section:
            continue
        has_section = True
        options.append(Option(key.rstrip(_BLANKS), value.strip(_BLANKS), number))
    return UwsgiIni(tuple(options), has_section, tuple(headers))
