"""Who runs what: an unknown [fnud] user, the app as root without ``allow_root``, a file
root trusts that another user may write (the same refusals as start and reload), a
fnud.toml holding the page's token that every user may read; and the mode the config
runs in (``mode_line``)."""

from __future__ import annotations

import os
import pwd
import stat
from collections.abc import Mapping

from supervisor.checks.finding import Finding, error, warning
from supervisor.checks.inputs import Inputs
from supervisor.config.parse import locate
from supervisor.config.schema import Config
from supervisor.stack.plan import Plan, StackError
from supervisor.stack.trusted import untrusted_file


def check(inputs: Inputs) -> list[Finding]:
    config = inputs.config
    out: list[Finding] = []
    plan = Plan(config, inputs.environ)
    try:
        untrusted = untrusted_file(plan)
        refusal = "" if untrusted else plan.root_refusal()
    except (StackError, OSError) as exc:
        untrusted, refusal = None, str(exc)  # an unreadable file: its own check says so
    if untrusted is not None:
        out.append(error(untrusted[0], 0, untrusted[1]))
    elif refusal:
        line = locate(inputs.toml_text, "fnud", "user") if config.fnud.user else 0
        out.append(error(config.path, line, refusal))
    out += _token_readable(inputs)
    return out


def _token_readable(inputs: Inputs) -> list[Finding]:
    config = inputs.config
    if not config.web.token:
        return []
    try:
        mode = stat.S_IMODE(os.stat(config.path).st_mode)
    except OSError:
        return []
    if not mode & stat.S_IROTH:
        return []
    return [warning(
        config.path, locate(inputs.toml_text, "web", "token"),
        "fnud.toml holds [web] token and every local user may read it",
        f"chmod 600 {config.path} (or 640 with a group of operators)",
    )]


def mode_line(config: Config, environ: Mapping[str, str]) -> str:
    """Who runs what with this config, run by this user."""
    server = config.server_display
    if os.geteuid() != 0:
        who = pwd_name(os.geteuid())
        ports = "its own ports" if not environ.get("LISTEN_FDS") else "sockets from systemd"
        return (f"mode: rootless: fnud, nginx and {server} run as {who}, on {ports} "
                "(ports below 1024 come from systemd: fnud systemd-unit --socket)")
    if config.balancer:
        return "mode: root: fnud and nginx's master as root, nginx's workers as nginx's user"
    if config.fnud.user and config.fnud.user != "root":
        return (f"mode: root: fnud and nginx's master as root; {server} (master and "
                f"workers), the preflight and the probes as {config.fnud.user}")
    return f"mode: root: fnud, nginx's master and {server} as root (allow_root)"


def pwd_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"
