"""Generation mode: what fnud cannot hold (so the stack falls back to chain reloads) and
what a generation cannot pin (lazy-apps respawns reading edited files)."""

from __future__ import annotations

from supervisor import sockets, uwsgi
from supervisor.checks.finding import Finding, warning
from supervisor.checks.inputs import Inputs


def uses_chain(inputs: Inputs) -> bool:
    """Reloads of this stack are chain reloads (configured, or the fallback)."""
    ini = inputs.ini
    if inputs.config.uwsgi.reload == "chain" or ini is None:
        return True
    name = str(inputs.ini_path)
    if not any(opt.key in sockets.UWSGI_SOCKET_OPTIONS for opt in ini):
        return False  # no socket at all: reported as such, no reload to speak of
    specs = sockets.uwsgi_specs(ini, name, lambda v: uwsgi.expand_magic(v, inputs.ini_path))
    return not specs or bool(sockets.unholdable(ini, name))


def check(inputs: Inputs) -> list[Finding]:
    ini = inputs.ini
    if ini is None or inputs.config.uwsgi.reload == "chain":
        return []
    path = inputs.ini_path
    out = []
    for line in sockets.unholdable(ini, str(path)):
        where, _, message = line.partition(": ")
        number = int(where.rpartition(":")[2])
        out.append(warning(
            path, number, f"{message}: reloads fall back to chain mode",
            "use 'socket = HOST:PORT' or a unix socket path for nginx's uwsgi_pass",
        ))
    if uses_chain(inputs):
        return out
    lazy = ini.get("lazy-apps")
    chdir = ini.get("chdir")
    through_link = chdir is not None and uwsgi.release_link(
        str(path.parent / uwsgi.expand_magic(chdir.value.strip(), path))
    ) is not None
    if lazy is not None and ini.flag("lazy-apps") and not through_link:
        out.append(warning(
            path, lazy.line,
            "lazy-apps: a respawned worker imports the files on disk then, so an in-place "
            "edit reaches it without the reload's checks",
            "deploy releases through a symlink (chdir = .../current -> releases/<id>), "
            "or drop lazy-apps: preloaded workers fork the vetted code",
        ))
    return out
