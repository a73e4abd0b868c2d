"""The bench's sections, in the order they run.

A section is a function ``(bench: Bench) -> list[Table]`` whose docstring says exactly
what it measures (it is printed above its tables). To add one, write it in a module
here and append it to ``SECTIONS``. It gets shared stacks from ``bench.fnud_stack()`` /
``hand_stack()`` / ``flask_dev()``, or private ones from ``bench.new_files()`` and
``bench.private_fnud()`` (a started fnud stack, stopped at the end if the section did not
stop it); it must leave shared stacks serving.
"""

from __future__ import annotations

from collections.abc import Callable

from bench.context import Bench
from bench.report import Table
from bench.sections.daemon_footprint import daemon_footprint
from bench.sections.fault_recovery import fault_recovery
from bench.sections.fleet import fleet
from bench.sections.generations import generations
from bench.sections.gunicorn import gunicorn
from bench.sections.gunicorn_pause import gunicorn_pause
from bench.sections.reload import reload_under_load
from bench.sections.save_to_live import save_to_live
from bench.sections.soak import soak
from bench.sections.throughput import throughput

Section = Callable[[Bench], list[Table]]

SECTIONS: list[Section] = [
    throughput,
    reload_under_load,
    save_to_live,
    fault_recovery,
    daemon_footprint,
    generations,
    gunicorn,
    gunicorn_pause,
    soak,
    fleet,
]


def selected(names: tuple[str, ...]) -> list[Section]:
    """The sections whose name starts with one of ``names`` (all when empty)."""
    if not names:
        return list(SECTIONS)
    chosen = [s for s in SECTIONS if any(s.__name__.startswith(n) for n in names)]
    if not chosen:
        known = ", ".join(s.__name__ for s in SECTIONS)
        raise SystemExit(f"BENCH_SECTIONS={','.join(names)} matches none of: {known}")
    return chosen
