"""The command blocks of README.md and docs/, as the tests that run them read them.

Tests take the commands from the docs (never a copy of them), substitute what differs on
a test machine (paths under a temp dir, ports picked free, no sudo), and run them.
``RUN_BY`` names, for every ```sh block, the test that runs it, or why none can.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "deploy" / "README.md")
_BLOCK = re.compile(r"^ *```(\w*)\n(.*?)^ *```", re.S | re.M)
_HEADING = re.compile(r"^(#+) (.*)$", re.M)


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence
    lang: str
    section: str  # the heading above it
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    def commands(self) -> list[str]:
        """Its commands: comments and blank lines dropped, continuations joined."""
        out: list[str] = []
        pending = ""
        for raw in self.text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            line = pending + line
            if line.endswith("\\"):
                pending = line[:-1].rstrip() + " "
                continue
            pending = ""
            out.append(re.sub(r"\s+#\s.*$", "", line))
        return out


def blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    headings = [(m.start(), m.group(2).strip()) for m in _HEADING.finditer(text)]
    out = []
    for match in _BLOCK.finditer(text):
        section = ""
        for start, title in headings:
            if start < match.start():
                section = title
        body = "\n".join(line.strip() for line in match.group(2).splitlines())
        out.append(Block(path, text[:match.start()].count("\n") + 1, match.group(1),
                         section, body))
    return out


def section(path: Path, title: str, langs: tuple[str, ...] = ("sh", "console")) -> list[Block]:
    """The command blocks under the heading ``title`` (in order)."""
    found = [b for b in blocks(path) if b.section == title and b.lang in langs]
    assert found, f"{path.relative_to(ROOT)} has no command block under '{title}'"
    return found


#: every ```sh block (by its first command) -> the test that runs it, or why none can
RUN_BY = {
    "make run": "not run: serves in the foreground until Ctrl-C (the stack tests start "
                "the same config with `fnud start`)",
    "make test": "not run: it is the suite itself",
    "make dist": "tests/stack/test_adoption.py",
    ".venv/bin/fnud -c config/fnud.toml status": "tests/stack/test_docs_commands.py",
    "make bench": "not run: benchmarks report numbers, tests assert behaviour",
    ".venv/bin/fnud -c config/fnud.toml check": "tests/stack/test_docs_commands.py",
    ".venv/bin/python -m testkit.configdoc": "tests/stack/test_docs_commands.py",
    "python3 -c 'import secrets; print(secrets.token_urlsafe())'":
        "tests/stack/test_docs_commands.py",
}
