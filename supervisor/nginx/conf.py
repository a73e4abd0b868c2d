"""nginx.conf as fnud reads it: parsed with its includes (crossplane), never raising for
bad syntax; what fnud needs to know of it (listens, pid, user) and its fingerprint."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import crossplane


@dataclass(frozen=True)
class Message:
    """One problem found in the configuration: where (``line`` 0: the file as a whole),
    what, and nginx's level (``emerg``, ``warn``...; "" when nginx gave none)."""

    file: str
    line: int
    text: str
    level: str = "emerg"

    @property
    def is_error(self) -> bool:
        return self.level in ERROR_LEVELS


ERROR_LEVELS = frozenset({"emerg", "alert", "crit", "error"})


@dataclass(frozen=True)
class Directive:
    name: str
    args: tuple[str, ...]
    file: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class NginxConf:
    """What fnud needs to know about a parsed nginx.conf (with its includes)."""

    files: tuple[str, ...]
    directives: tuple[Directive, ...]
    errors: tuple[Message, ...]  # what crossplane could not parse

    def named(self, *names: str) -> list[Directive]:
        return [d for d in self.directives if d.name in names]

    @property
    def main_pid(self) -> Directive | None:
        found = [d for d in self.named("pid") if d.file == self.files[0]]
        return found[0] if found else None


def _walk(block: list[dict[str, Any]], file: str, out: list[Directive]) -> None:
    for item in block:
        out.append(
            Directive(item["directive"], tuple(item.get("args", [])), file, int(item["line"]))
        )
        if "block" in item:
            _walk(item["block"], file, out)


_ERRNO_RE = re.compile(r"^\[Errno \d+\] (?P<reason>.*?): '(?P<path>.*)'$")


#: what nginx says where crossplane runs out of tokens mid-statement (its error is empty)
CUT_OFF = 'unexpected end of file, expecting ";" or "}"'


def _last_line(file: str) -> int:
    try:
        with open(file, "rb") as handle:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(65536), b"")) + 1
    except OSError:
        return 1


def _crossplane_error(file: str, error: dict[str, Any]) -> Message:
    if not error.get("error"):  # a statement or a quote cut off by the end of the file
        return Message(file, _last_line(file), CUT_OFF)
    line = int(error.get("line") or 1)
    text = str(error.get("error")).removesuffix(f" in {file}:{line}")
    match = _ERRNO_RE.match(text)
    if match:  # an include that cannot be read
        text = f"cannot open {match.group('path')}: {match.group('reason')}"
    return Message(file, line, text)


def analyze(conf: Path) -> NginxConf:
    """Parse nginx.conf and its includes with crossplane (never raises for bad syntax)."""
    payload = crossplane.parse(str(conf), catch_errors=True, comments=False)
    files: list[str] = []
    directives: list[Directive] = []
    errors = []
    for entry in payload.get("config", []):
        files.append(entry["file"])
        _walk(entry.get("parsed", []), entry["file"], directives)
        errors += [_crossplane_error(entry["file"], err) for err in entry.get("errors", [])]
    return NginxConf(tuple(files) or (str(conf),), tuple(directives), tuple(errors))


def fingerprint(conf: NginxConf) -> str:
    """Hash of every file of the configuration: decides whether nginx needs a reload."""
    digest = hashlib.sha256()
    for name in conf.files:
        digest.update(name.encode())
        try:
            digest.update(Path(name).read_bytes())
        except OSError:
            digest.update(b"<unreadable>")
    return digest.hexdigest()


def worker_user(conf: NginxConf, configured: str) -> str:
    """Who nginx's workers run as: the conf's ``user``, else fnud's, else nobody."""
    found = [d for d in conf.named("user") if d.file == conf.files[0] and d.args]
    if found:
        return found[0].args[0]
    return configured or "nobody"
