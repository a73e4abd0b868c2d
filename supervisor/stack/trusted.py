"""What root trusts must be root's alone (like sshd's StrictModes).

fnud as root reads fnud.toml, hands nginx's config to a root master and runs nginx's
binary; when root itself runs the app (``allow_root``), it runs the app server's binary
on the app server's config too. Each of these, and every directory above it, must be
writable by root alone; otherwise whoever may write it is root. With [fnud] user, the
app server's files are read by that user's processes only, and need no such trust.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Protocol

from supervisor.common.trust import untrusted_entry
from supervisor.config.schema import Config


class _Plan(Protocol):
    """What of a Plan this needs (a Plan passes; tests can pass less)."""

    config: Config

    @property
    def nginx_files(self) -> tuple[str, ...]: ...

    def nginx_binary(self) -> str: ...

    def app_binary(self) -> str: ...

    @property
    def runs_app_as_root(self) -> bool: ...


def root_trusts(plan: _Plan) -> list[str]:
    """The files root executes or trusts for this config, most important first."""
    config = plan.config
    files = [str(config.path), *plan.nginx_files, plan.nginx_binary()]
    if plan.runs_app_as_root:
        files += [str(f) for f in config.app_config_files]
        files.append(plan.app_binary())
    return [f for f in dict.fromkeys(files) if f]


def untrusted_file(plan: _Plan) -> tuple[str, str] | None:
    """(a file root trusts, why it may not): the first of ``root_trusts`` someone but
    root may write, or a directory above it; None when fnud is not root or all are
    root's alone."""
    if os.geteuid() != 0:
        return None
    for name in root_trusts(plan):
        if not Path(name).exists():
            continue  # reported by the checks that need it
        found = untrusted_entry(name)
        if found is not None:
            offender, why = found
            quoted = shlex.quote(offender)
            return name, (
                f"{why}: fnud runs as root and trusts this file, so only root may write it "
                f"and the directories above it (chown root:root {quoted}; chmod go-w {quoted})"
            )
    return None


def trust_refusal(plan: _Plan) -> str:
    """``untrusted_file`` as one line ('' when there is none)."""
    found = untrusted_file(plan)
    return f"{found[0]}: {found[1]}" if found else ""
