"""Tables: what every section returns, and the one printer for all of them."""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field

Cell = str | int | float | None


@dataclass
class Table:
    """Rows of cells under ``header``; ``notes`` are printed below (ratios, remarks)."""

    title: str
    header: Sequence[str]
    rows: list[Sequence[Cell]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def ms(seconds: float | None) -> str:
    """Latency for humans: 812us, 4.9ms, 78ms, 1.42s."""
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f}us"
    if seconds < 0.01:
        return f"{seconds * 1e3:.1f}ms"
    if seconds < 1.0:
        return f"{seconds * 1e3:.0f}ms"
    return f"{seconds:.2f}s"


def secs(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f}s"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.2f}x"


def _cell(value: Cell) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"
    return value


def render_table(table: Table) -> str:
    cells = [[_cell(c) for c in row] for row in table.rows]
    widths = [len(h) for h in table.header]
    for row in cells:
        for i, text in enumerate(row):
            widths[i] = max(widths[i], len(text))
    numeric = [
        all(isinstance(row[i], int | float) or row[i] is None for row in table.rows)
        and i > 0 for i in range(len(table.header))
    ]

    def line(texts: Sequence[str]) -> str:
        parts = [
            t.rjust(w) if numeric[i] or (i > 0 and _looks_numeric(t)) else t.ljust(w)
            for i, (t, w) in enumerate(zip(texts, widths, strict=True))
        ]
        return "  " + "  ".join(parts).rstrip()

    out = [f"-- {table.title}", line(list(table.header))]
    out.append("  " + "  ".join("-" * w for w in widths))
    out += [line(row) for row in cells]
    out += [f"  {note}" for note in table.notes]
    return "\n".join(out)


def _looks_numeric(text: str) -> bool:
    return bool(text) and (text[0].isdigit() or text in ("-", "n/a"))


def render_section(name: str, doc: str, tables: Sequence[Table]) -> str:
    """A section: its name, its docstring (what exactly is measured), its tables."""
    bar = "=" * 100
    text = inspect.cleandoc(doc or "")
    wrapped = "\n".join(
        textwrap.fill(" ".join(par.split()), width=98, initial_indent="  ",
                      subsequent_indent="  ")
        for par in text.split("\n\n")
    )
    body = "\n\n".join(render_table(t) for t in tables)
    return f"{bar}\n{name}\n{bar}\n{wrapped}\n\n{body}\n"
