"""The user's uwsgi.ini, read exactly like uWSGI reads it (supervisor.ini).

Paths are resolved like uWSGI does under fnud: the process starts in the ini's
directory, ``chdir`` is relative to that, and ``wsgi-file``, ``virtualenv`` and
``pythonpath`` are relative to the directory ``chdir`` leads to. A value with a
placeholder that cannot be known here (``@(file)``, an unset ``$(VAR)``, ``%t`` ...)
is never reported as missing.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from supervisor.checks import generations
from supervisor.checks import uwsgi_values as values
from supervisor.checks.finding import Finding, error, warning
from supervisor.checks.inputs import Inputs, path_is
from supervisor.uwsgi import options
from supervisor.uwsgi.ini import UwsgiIni

_BOOLEAN_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "1", "0", "enable"})


def check(inputs: Inputs) -> list[Finding]:
    ini = inputs.ini
    if ini is None:
        return []  # unreadable or missing: reported against fnud.toml
    path = inputs.ini_path
    if not ini.has_section:
        found = [name for name, _ in ini.headers if name]
        also = f" (found: {', '.join('[' + n + ']' for n in found[:5])})" if found else ""
        return [error(
            path, 1, f"no options in a [uwsgi] section{also}: uWSGI would ignore this file",
            "put the options under a line '[uwsgi]'",
        )]
    out: list[Finding] = []
    out += inline_comments(ini, path)
    out += daemonize(ini, path)
    out += chain_reload(ini, path, generations.uses_chain(inputs))
    out += touch_values(ini, path)
    out += stats_on_tcp(ini, path, inputs.environ)
    out += missing_paths(ini, path, inputs.environ)
    out += no_app(ini, path)
    out += runtime_files(ini, path, inputs.environ)
    out += root_options(ini, path, bool(inputs.config.fnud.user) or os.geteuid() != 0)
    return out


def root_options(ini: UwsgiIni, path: Path, app_user: bool) -> list[Finding]:
    """Root's hooks are commented out; with [fnud] user uWSGI is never root, so its
    root-only options do nothing either."""
    out = []
    for opt in ini:
        if options.runs_as_root(opt.key):
            out.append(warning(
                path, opt.line,
                f"'{opt.key}' would run as root: fnud comments it out and never runs uWSGI "
                "as root for it",
                "do that step outside the app (a systemd unit, a deploy script run by root)",
            ))
        elif app_user and opt.key in options.NEEDS_ROOT:
            out.append(warning(
                path, opt.line,
                f"'{opt.key} = {opt.value}' does nothing: uWSGI starts as [fnud] user (or as "
                "fnud's own user) from its exec, never as root",
                "remove it: the workers' user is [fnud] user (and group) in fnud.toml",
            ))
    return out


def inline_comments(ini: UwsgiIni, path: Path) -> list[Finding]:
    out = []
    for opt in ini:
        match = values.INLINE_COMMENT_RE.search(opt.value)
        if match:
            comment = opt.value[match.start():].strip()
            out.append(error(
                path, opt.line,
                f"inline comment in '{opt.key}': uWSGI does not strip '{comment[:30]}', "
                f"the value is the whole string '{opt.value[:60]}'",
                "move the comment to a line of its own",
            ))
    return out


def daemonize(ini: UwsgiIni, path: Path) -> list[Finding]:
    return [
        error(
            path, opt.line,
            f"'{opt.key}' detaches uWSGI from its supervisor",
            "remove it: fnud comments it out when it runs uWSGI and logs its output itself",
        )
        for opt in ini
        if opt.key in options.DAEMONIZE
    ]


def chain_reload(ini: UwsgiIni, path: Path, chain: bool) -> list[Finding]:
    """Zero-downtime reloads need the master; chain reloads also lazy-apps (a new
    generation loads the app anew, so generation mode does not)."""
    if options.includes_others(ini):
        return []  # master/lazy-apps may come from the included file
    out = []
    needed = [(options.MASTER, "zero-downtime reloads need the master process (its fifo)")]
    if chain:
        needed.append((options.LAZY_APPS, "a chain reload would restart the workers with the "
                       "old code (they fork from the master, which loaded the app once)"))
    for names, why in needed:
        if options.flag(ini, names):
            continue
        key = names[0]
        option = options.last(ini, names)
        line = option.line if option is not None else ini.section_line
        state = f"'{key} = {option.value}'" if option is not None else f"no '{key}'"
        out.append(error(
            path, line, f"{state}: {why}",
            f"set '{key} = true'",
        ))
    return out


def touch_values(ini: UwsgiIni, path: Path) -> list[Finding]:
    return [
        warning(
            path, opt.line,
            f"'{opt.key} = {opt.value}' watches a file named '{opt.value}', it is not a switch",
            f"name a file to touch, e.g. '{opt.key} = %dreload.trigger'",
        )
        for opt in ini
        if opt.key in options.TOUCH_RELOAD and opt.value.strip().lower() in _BOOLEAN_WORDS
    ]


def stats_on_tcp(ini: UwsgiIni, path: Path, environ: Mapping[str, str]) -> list[Finding]:
    out = []
    for opt in ini:
        if opt.key not in options.STATS:
            continue
        value = options.resolve(opt.value, path, ini, environ)
        if value is None:
            continue
        # uWSGI reads the port with atoi(): "127.0.0.1:9191  # stats" still binds TCP 9191
        value = values.INLINE_COMMENT_RE.split(value)[0].strip()
        if values.tcp_address(value.split(",")[0]) is not None:
            kind = "TCP"
        elif value.startswith("@"):
            kind = "an abstract unix socket"
        else:
            continue
        out.append(warning(
            path, opt.line,
            f"'{opt.key} = {opt.value}' serves worker stats on {kind}: "
            "every local user can read them",
            "remove it: fnud comments it out and gives uWSGI a stats socket "
            "in its private runtime dir",
        ))
    return out


def missing_paths(ini: UwsgiIni, path: Path, environ: Mapping[str, str]) -> list[Finding]:
    out = []
    start = path.parent
    chdir = options.last(ini, options.CHDIR)
    if chdir is not None and not values.has_comment(chdir):
        target = options.resolve_path(chdir.value, start, path, ini, environ)
        if target is not None and not path_is(Path.is_dir, target):
            out.append(error(
                path, chdir.line, f"chdir: {target} is not a directory",
                "point chdir at your project (a relative path is relative to this file's "
                "directory; '%d' is this file's directory)",
            ))
    workdir = values.workdir(ini, path, environ)
    if workdir is None:
        return out  # where relative paths lead is unknown (or chdir is already reported)
    for opt in ini:
        if values.has_comment(opt):
            continue
        if opt.key in options.WSGI_FILE:
            target = options.resolve_path(opt.value, workdir, path, ini, environ)
            if target is not None and not path_is(Path.is_file, target):
                out.append(error(
                    path, opt.line, f"{opt.key}: {target} is not a file",
                    "a relative wsgi-file is relative to chdir",
                ))
        elif opt.key in options.VIRTUALENV:
            target = options.resolve_path(opt.value, workdir, path, ini, environ)
            if target is not None and not path_is(Path.is_dir, target):
                out.append(error(
                    path, opt.line, f"{opt.key}: {target} is not a directory",
                    "name the virtualenv directory (relative paths are relative to chdir)",
                ))
        elif opt.key in options.PYTHONPATH:
            if any(ch in opt.value for ch in "*?["):
                continue  # a glob: may legitimately match nothing yet
            target = options.resolve_path(opt.value, workdir, path, ini, environ)
            if target is not None and not path_is(Path.exists, target):
                out.append(error(
                    path, opt.line, f"{opt.key}: {target} does not exist",
                    "fix or remove it (relative paths are relative to chdir)",
                ))
    return out


def no_app(ini: UwsgiIni, path: Path) -> list[Finding]:
    if options.includes_others(ini) or options.every(ini, options.APP):
        return []
    return [error(
        path, ini.section_line, "no app: none of module, wsgi-file, mount is set",
        "add e.g. 'module = app' and 'callable = app'",
    )]


def runtime_files(ini: UwsgiIni, path: Path, environ: Mapping[str, str]) -> list[Finding]:
    out = []
    for opt in ini:
        base_kind = options.RUNTIME_FILES.get(opt.key)
        if base_kind is None or values.has_comment(opt):
            continue
        base = path.parent if base_kind == "start" else values.workdir(ini, path, environ)
        target = options.resolve_path(opt.value, base, path, ini, environ)
        if target is None:
            continue
        directory = Path(os.path.normpath(target.parent))
        try:
            mode = directory.stat().st_mode
        except (OSError, ValueError):
            continue
        if not mode & stat.S_IWOTH:
            continue
        if mode & stat.S_ISVTX:
            why = "another local user can create that name first (a symlink or their own file)"
        else:
            why = "it has no sticky bit: any local user can replace or remove the file"
        out.append(warning(
            path, opt.line, f"{opt.key}: {directory} is writable by every user; {why}",
            "put it in a directory only the service user can write",
        ))
    return out
