"""Generation mode: what fnud cannot hold (so the stack falls back to chain reloads) and
what a generation cannot pin (lazy-apps respawns reading edited files)."""

from __future__ import annotations

from supervisor.checks.finding import Finding, warning
from supervisor.checks.inputs import Inputs
from supervisor.runtime.release import release_link
from supervisor.uwsgi import options, sockets


def uses_chain(inputs: Inputs) -> bool:
    """Reloads of this stack are chain reloads (configured, or the fallback)."""
    ini = inputs.ini
    if inputs.config.uwsgi.reload == "chain" or ini is None:
        return True
    name = str(inputs.ini_path)
    if not options.every(ini, options.HOLDABLE_SOCKETS):
        return False  # no socket at all: reported as such, no reload to speak of

    def expand(value: str) -> str:
        return options.resolve(value, inputs.ini_path, ini, inputs.environ, strict=False) or value

    specs = sockets.uwsgi_specs(ini, name, expand)
    return not specs or bool(sockets.unholdable(ini, name))


def check(inputs: Inputs) -> list[Finding]:
    ini = inputs.ini
    if ini is None or inputs.config.uwsgi.reload == "chain":
        return []
    path = inputs.ini_path
    out = []
    for problem in sockets.unholdable(ini, str(path)):
        out.append(warning(
            problem.file, problem.line, f"{problem.reason}: reloads fall back to chain mode",
            "use 'socket = HOST:PORT' or a unix socket path for nginx's uwsgi_pass",
        ))
    if uses_chain(inputs):
        return out
    lazy = options.last(ini, options.LAZY_APPS)
    chdir = options.chdir(ini, path, inputs.environ, strict=False)
    through_link = options.last(ini, options.CHDIR) is not None and chdir is not None and (
        release_link(str(chdir)) is not None
    )
    if lazy is not None and options.flag(ini, options.LAZY_APPS):
        out += _many_lazy(inputs, lazy.line)
    if lazy is not None and options.flag(ini, options.LAZY_APPS) and not through_link:
        out.append(warning(
            path, lazy.line,
            "lazy-apps: a respawned worker imports the files on disk then, so an in-place "
            "edit reaches it without the reload's checks",
            "deploy releases through a symlink (chdir = .../current -> releases/<id>), "
            "or drop lazy-apps: preloaded workers fork the vetted code",
        ))
    return out


#: from docs/benchmarks.md (the generations table, 2 cores): 16 workers, command -> serving
LAZY_16, PRELOADED_16 = "1.29 s", "580 ms"
MANY_WORKERS = 8


def _many_lazy(inputs: Inputs, line: int) -> list[Finding]:
    """Every generation of a lazy-apps stack imports the app once per worker, all at
    once: with many workers on few cores that is most of a reload."""
    assert inputs.ini is not None
    option = options.last(inputs.ini, options.PROCESSES)
    value = option.value.strip() if option is not None else ""
    workers = int(value) if value.isdigit() else 1
    if workers < MANY_WORKERS:
        return []
    return [warning(
        inputs.ini_path, line,
        f"lazy-apps with {workers} workers: each new generation imports the app {workers} "
        f"times at once before it serves (16 workers on 2 cores: {LAZY_16} lazy, "
        f"{PRELOADED_16} preloaded)",
        "drop lazy-apps unless the app must be imported after the fork: preloaded "
        "workers fork the app imported once, and a respawn forks the vetted code",
    )]
