"""The README's table of fnud.toml keys, generated from supervisor/config.py.

Keys and defaults come from the section dataclasses, each key's comment from the
comment on its line in config.py. ``tests/test_units.py`` fails when README.md differs;
``python -m tests.configdoc`` rewrites the table in README.md between the markers.
"""

from __future__ import annotations

import ast
import io
import json
import sys
import tokenize
from pathlib import Path
from typing import Any

from supervisor.config import schema as config

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BEGIN = "<!-- fnud.toml keys: generated from supervisor/config.py by python -m tests.configdoc -->"
END = "<!-- end of generated fnud.toml keys -->"
COMMENT_COLUMN = 25


def field_comments(source: str) -> dict[tuple[str, str], str]:
    """(class name, field name) -> the comment on the field's line."""
    comments = {
        token.start[0]: token.string.removeprefix("#").strip()
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
    }
    out = {}
    for node in ast.parse(source).body:
        if not isinstance(node, ast.ClassDef):
            continue
        for stmt in node.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                lines = (stmt.lineno, stmt.end_lineno or stmt.lineno)
                text = next((comments[n] for n in lines if n in comments), "")
                out[node.name, stmt.target.id] = text
    return out


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, Path)):
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def table() -> str:
    """Every key of every section with its default and comment, as a TOML block."""
    comments = field_comments(Path(config.__file__).read_text(encoding="utf-8"))
    blocks = []
    for name, cls in config.SECTIONS.items():
        defaults = cls()
        lines = [f"[{name}]"]
        for field in config.keys(cls):
            entry = f"{field.name} = {toml_value(getattr(defaults, field.name))}"
            comment = comments.get((cls.__name__, field.name), "")
            if comment:
                pad = entry.ljust(COMMENT_COLUMN) if len(entry) < COMMENT_COLUMN else entry + "   "
                entry = f"{pad}# {comment}"
            lines.append(entry)
        blocks.append("\n".join(lines))
    return "```toml\n" + "\n\n".join(blocks) + "\n```"


def readme_table(text: str) -> str:
    """The generated block as README.md holds it (between the markers)."""
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[start:end].strip("\n")


def rewrite(text: str) -> str:
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[:start] + "\n" + table() + "\n" + text[end:]


if __name__ == "__main__":
    README.write_text(rewrite(README.read_text(encoding="utf-8")), encoding="utf-8")
    sys.exit(0)
