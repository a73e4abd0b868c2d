"""A gunicorn.conf.py read with ``ast``, never run by fnud: the settings it assigns at
module level, with their values where they are literals."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

UNKNOWN: Any = object()  # a value only running the file would tell


@dataclass(frozen=True)
class Assignment:
    name: str
    line: int
    value: Any  # the literal assigned, or UNKNOWN
    conditional: bool  # inside an if, try, with or loop at module level


@dataclass(frozen=True)
class ConfFile:
    settings: dict[str, list[Assignment]]  # every module-level assignment, by name
    error: tuple[int, str] | None = None  # (line, message) when it does not parse

    def last(self, name: str) -> Assignment | None:
        found = self.settings.get(name)
        return found[-1] if found else None

    def value(self, name: str, default: Any = None) -> Any:
        """The literal the file leaves in ``name`` (``default``: unset or unknown)."""
        last = self.last(name)
        return default if last is None or last.value is UNKNOWN else last.value


def _literal(node: ast.expr | None) -> Any:
    if node is None:
        return UNKNOWN
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return UNKNOWN


def _targets(stmt: ast.stmt) -> list[tuple[str, Any]]:
    """(name, value) of what ``stmt`` assigns to plain names."""
    if isinstance(stmt, ast.Assign):
        value = _literal(stmt.value)
        out = []
        for target in stmt.targets:
            if isinstance(target, ast.Name):
                out.append((target.id, value))
            elif isinstance(target, (ast.Tuple, ast.List)):
                out += [(t.id, UNKNOWN) for t in target.elts if isinstance(t, ast.Name)]
        return out
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
        return [(stmt.target.id, _literal(stmt.value))]
    if isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
        return [(stmt.target.id, UNKNOWN)]
    return []


def _walk(body: list[ast.stmt], nested: bool, out: dict[str, list[Assignment]]) -> None:
    for stmt in body:
        for name, value in _targets(stmt):
            out.setdefault(name, []).append(Assignment(name, stmt.lineno, value, nested))
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue  # their names are hooks or helpers, their bodies run later
        for block in ("body", "orelse", "finalbody"):
            inner = getattr(stmt, block, None)
            if isinstance(inner, list) and inner and isinstance(inner[0], ast.stmt):
                _walk(inner, True, out)
        for handler in getattr(stmt, "handlers", []):
            _walk(handler.body, True, out)


def read_conf(text: str, filename: str = "gunicorn.conf.py") -> ConfFile:
    try:
        tree = ast.parse(text, filename)
    except SyntaxError as exc:
        return ConfFile({}, (exc.lineno or 0, f"SyntaxError: {exc.msg}"))
    except ValueError as exc:  # a NUL byte
        return ConfFile({}, (0, str(exc)))
    found: dict[str, list[Assignment]] = {}
    _walk(tree.body, False, found)
    return ConfFile(found)
