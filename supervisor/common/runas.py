"""Who runs the app's code: the app's user, from the exec on.

fnud may run as root; everything that runs the app's code or reads its config (app
server masters, the preflight, the warm parent, `fnud check`'s probes) runs as the
app's user with that user's groups, set between fork and exec (never after the program
started). Its working directory is entered by the program itself, as that user: root
never changes into a directory the app's user controls.
"""

from __future__ import annotations

import grp
import os
import pwd
from dataclasses import dataclass
from typing import Any

#: ``sh -c IN_DIR DIR PROGRAM ARGS...``: enter DIR as the program's user, then exec it
IN_DIR = 'cd -- "$0" || exit 126; exec "$@"'
SHELL = "/bin/sh"


class UnknownUser(LookupError):
    """[fnud] user or group names nobody on this host (one line for the user)."""


@dataclass(frozen=True)
class RunAs:
    """A user with its primary group and supplementary groups (initgroups)."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]

    @classmethod
    def resolve(cls, user: str, group: str = "") -> RunAs:
        """``user`` (a name or a uid) and ``group`` ('' for the user's primary one)."""
        try:
            entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
        except (KeyError, OverflowError):
            raise UnknownUser(f"no user named {user!r} on this host") from None
        gid = entry.pw_gid
        if group:
            try:
                gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
            except KeyError:
                raise UnknownUser(f"no group named {group!r} on this host") from None
        try:
            groups = tuple(os.getgrouplist(entry.pw_name, gid))
        except OSError:
            groups = (gid,)
        return cls(entry.pw_name, entry.pw_uid, gid, groups)

    @property
    def owner(self) -> tuple[int, int]:
        return self.uid, self.gid

    def popen(self) -> dict[str, Any]:
        """subprocess's (and asyncio's) arguments: the identity, set before the exec."""
        return {"user": self.uid, "group": self.gid, "extra_groups": list(self.groups)}


def popen_as(run_as: RunAs | None) -> dict[str, Any]:
    return run_as.popen() if run_as is not None else {}


def in_dir(argv: list[str], cwd: str) -> list[str]:
    """``argv`` started in ``cwd``, entered by the program's own user (spawn it with
    cwd "/")."""
    return [SHELL, "-c", IN_DIR, cwd, *argv]
