"""Ending a connection of the web page or the metrics endpoint without keeping its fd."""

from __future__ import annotations

import asyncio


def finish(writer: asyncio.StreamWriter) -> None:
    """Close the connection; abort it when its answer is still unsent (a client that
    does not read must not keep the descriptor)."""
    if writer.transport.get_write_buffer_size():
        writer.transport.abort()
    else:
        writer.close()
