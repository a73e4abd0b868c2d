"""How a long operation reports progress: one line at a time, to whoever asked."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

Emit = Callable[[str], Awaitable[None]]


async def quiet(_: str) -> None:
    """An Emit for callers that do not want progress."""
    return None


def fan_out(emits: list[Emit]) -> Emit:
    """One Emit that reaches every one of ``emits`` (the list may grow meanwhile)."""

    async def emit(text: str) -> None:
        for each in list(emits):
            await each(text)

    return emit
