"""Files fnud writes that others read: replaced atomically, never through a planted link."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any


def write_atomic(
    path: Path, data: bytes, mode: int = 0o600, owner: tuple[int, int] | None = None
) -> None:
    """Replace ``path`` with a new file holding ``data`` (write a sibling, then rename:
    a reader sees the old file or the new one, never half of one). The sibling is
    created O_EXCL|O_NOFOLLOW, so a link planted under its name is never written through.
    ``owner``: (uid, gid) the file is given (the app's user, for what its master reads)."""
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.write(fd, data)
        os.fchmod(fd, mode)
        if owner is not None:
            os.fchown(fd, *owner)
    finally:
        os.close(fd)
    try:
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_json(path: Path, data: Any, mode: int = 0o600) -> None:
    write_atomic(path, json.dumps(data, separators=(",", ":")).encode(), mode)


def read_json(path: Path, max_bytes: int = 1 << 20) -> Any:
    """The JSON in ``path``; None when it is missing, unreadable, too large or not JSON."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(max_bytes + 1)
    except OSError:
        return None
    if len(raw) > max_bytes:
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
