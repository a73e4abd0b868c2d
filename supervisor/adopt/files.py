"""Writing what `fnud init` made: into a directory root alone may write (when root), each
file created anew (O_EXCL|O_NOFOLLOW, never through a link someone planted) and then
renamed into place; fnud.toml 0600 when it holds a secret."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from supervisor.adopt.errors import InitError
from supervisor.common.trust import untrusted_reason

SECRET_KEYS = ("token",)


def prepare_dir(directory: Path) -> None:
    """Create ``directory`` (0755; root's when root runs init), or accept an existing
    one only when no one but root may write it (as root: fnud trusts what is in it)."""
    try:
        directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    except OSError as exc:
        raise InitError(directory, 0, f"cannot create: {exc.strerror}") from None
    refuse_untrusted(directory)


def refuse_untrusted(directory: Path) -> None:
    """As root: InitError when someone but root may write ``directory`` (or above)."""
    if os.geteuid() != 0 or not os.path.lexists(directory):
        return
    why = untrusted_reason(directory)
    if why:
        raise InitError(directory, 0, f"{why.split(': ', 1)[-1]}: fnud as root trusts this "
                        "directory; name one only root may write (e.g. --dir /etc/fnud)")


def mode_for(name: str, text: str) -> int:
    holds_secret = name == "fnud.toml" and any(
        line.strip().startswith(SECRET_KEYS) for line in text.splitlines()
    )
    return 0o600 if holds_secret else 0o644


def write_new(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``: a sibling created O_EXCL|O_NOFOLLOW, renamed over."""
    tmp = path.with_name(f".{path.name}.fnud-init")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    mode = mode_for(path.name, text)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.write(fd, text.encode("utf-8"))
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    os.replace(tmp, path)
