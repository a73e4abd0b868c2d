"""Which of nginx's listens fnud can hold (inet ones, without reuseport, once each)."""

from __future__ import annotations

from collections.abc import Iterable

from supervisor.common.ports import parse_nginx_listen
from supervisor.sockets.held import Spec


def nginx_specs(listens: Iterable[tuple[str, int, tuple[str, ...]]]) -> list[Spec]:
    """``(file, line, args)`` of each ``listen``: the inet ones without ``reuseport``,
    once per address."""
    out: dict[str, Spec] = {}
    for file, line, args in listens:
        if not args or "reuseport" in args[1:]:
            continue
        address = parse_nginx_listen(args[0])
        if address is not None and str(address) not in out:
            out[str(address)] = Spec(f"{file}:{line}", line, args[0], address)
    return list(out.values())
