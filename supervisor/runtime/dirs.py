"""The runtime directory: created 0700 and owned by the user running fnud.

Nothing in it may be readable, writable or replaceable by another local user. (With
[fnud] user as root it is 0711, so that the app server, running as that user, reaches
its own 0700 subdir.)
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class RuntimeDirError(Exception):
    pass


def ensure_private_dir(
    path: Path, owner: tuple[int, int] | None = None, corner: str = ""
) -> None:
    """Create the runtime dir 0700 (0711 when workers run as ``owner``, who must reach
    their own subdir ``corner``), or check an existing one is ours and not open to others.

    An existing dir with more permissions than that is refused, not silently changed:
    whatever another user could have planted in it would stay.
    """
    mode = 0o711 if owner is not None else 0o700
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.lstat()
    except OSError as exc:
        raise RuntimeDirError(f"{path}: cannot create runtime dir: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise RuntimeDirError(f"{path}: runtime dir is not a directory")
    if info.st_uid != os.geteuid():
        raise RuntimeDirError(f"{path}: runtime dir belongs to uid {info.st_uid}, not to us")
    current = stat.S_IMODE(info.st_mode)
    if current & ~mode & 0o7077 and current != 0o711:  # 0711: ours, from an earlier user
        raise RuntimeDirError(
            f"{path}: runtime dir has mode {current:o}, open to other users: "
            f"use a new directory (fnud creates it {mode:o})"
        )
    if current != mode:
        os.chmod(path, mode)
    if not corner:
        return
    sub = path / corner
    sub.mkdir(mode=0o700, exist_ok=True)
    if owner is not None:
        os.chown(sub, *owner)
    os.chmod(sub, 0o700)
