"""The user's ini as fnud runs it: a rendered copy in the runtime dir.

Options that would escape supervision (``daemonize``), bypass the reload gate
(``touch-chain-reload``, ``touch-reload``), expose stats on TCP (``stats``) or run
something as root (``exec-as-root``, ``hook-as-root``...) are commented out there,
keeping line numbers; uWSGI's ``%d``-style magic variables are expanded for the original
file so that relative paths keep working; held sockets become ``fd://N``; a generation's
path options are pinned to where they resolved at its start.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from supervisor.uwsgi import options
from supervisor.uwsgi.env import child_env
from supervisor.uwsgi.ini import UwsgiIni, parse_ini

#: options naming a path a generation pins (resolved through symlinks once, at its start)
PINNED_OPTIONS = frozenset(
    {*options.CHDIR, *options.WSGI_FILE, *options.PYTHONPATH, *options.VIRTUALENV}
)


def render_ini(
    text: str,
    ini_path: Path,
    replace: Mapping[int, str] | None = None,
    drop: frozenset[str] = frozenset(),
) -> str:
    """The user's ini with taken-away options commented out and magic vars expanded.

    ``replace`` {line: new value}: held sockets (``fd://N``) and pinned release paths.
    Line numbers are preserved, so uWSGI's own messages still point at the user's lines.
    """
    parsed = parse_ini(text)
    taken = options.TAKEN_AWAY | drop
    dropped = {
        opt.line for opt in parsed if opt.key in taken or options.runs_as_root(opt.key)
    }
    keys = {opt.line: opt.key for opt in parsed}
    lines = text.split("\n")
    out = []
    for number, line in enumerate(lines, start=1):
        if number in dropped:
            out.append("; [fnud: handled by fnud] " + line)
        elif replace and number in replace:
            out.append(f"{keys[number]} = {replace[number]}")  # uWSGI keeps inline comments
        else:
            out.append(options.expand_magic(line, ini_path))
    return "\n".join(out)


def touch_files(
    ini: UwsgiIni, ini_path: Path, workdir: Path, environ: Mapping[str, str] | None = None
) -> list[Path]:
    """Files named by touch-chain-reload/touch-reload, resolved like uWSGI would
    (``environ``: what uWSGI gets; default fnud's own, scrubbed)."""
    env = child_env(os.environ if environ is None else environ)
    out = []
    for opt in options.every(ini, options.TOUCH_RELOAD):
        value = options.resolve(opt.value, ini_path, ini, env, strict=False) or opt.value
        path = Path(value)
        out.append(path if path.is_absolute() else workdir / path)
    return out


def pins(
    ini: UwsgiIni, ini_path: Path, environ: Mapping[str, str] | None = None
) -> dict[int, str]:
    """{line: resolved path} for every path option: a generation loads only from there,
    whatever a symlink such as ``current -> releases/<id>`` points at later.

    ``environ``: what uWSGI gets (default: fnud's own, scrubbed)."""
    env = child_env(os.environ if environ is None else environ)
    base = ini_path.parent
    workdir = Path(release_dir(ini, ini_path, env))
    out = {}
    for opt in ini:
        if opt.key not in PINNED_OPTIONS or not opt.value.strip():
            continue
        value = options.resolve(opt.value.strip(), ini_path, ini, env, strict=False) or ""
        relative_to = base if opt.key in options.CHDIR else workdir
        out[opt.line] = os.path.realpath(relative_to / value)
    return out


def release_dir(
    ini: UwsgiIni, ini_path: Path, environ: Mapping[str, str] | None = None
) -> str:
    """The app's directory as it resolves now (chdir through symlinks, else the ini's)."""
    env = child_env(os.environ if environ is None else environ)
    chdir = options.chdir(ini, ini_path, env, strict=False) or ini_path.parent
    return os.path.realpath(chdir)
