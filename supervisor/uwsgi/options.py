"""What fnud knows about uWSGI's options: names, aliases, list options, placeholders.

``fnud check`` (supervisor.checks), the app preflight and the uWSGI adapter read the
user's ini through this module only, so that they agree on what an option means.

Names are ini keys: the short command-line letters (``-H``, ``-w``, ``-s``) are not
accepted in an ini (uWSGI 2.0.31 in strict mode: "unknown config directive: H").
An option set twice keeps its last value, except list options, where every line counts.

Placeholders, as uWSGI 2.0.31 expands them: ``%d``-style magic variables for the ini's
location, ``$(VAR)`` from the environment (an unset one stays literally ``$(VAR)``),
``@(file)`` the contents of a file, ``%(option)`` another option's value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from supervisor.uwsgi.ini import Option, UwsgiIni

# -- names: every ini key uWSGI accepts for one setting ---------------------------------
CHDIR = ("chdir",)
VIRTUALENV = ("virtualenv", "venv", "home", "pyhome")
MODULE = ("module", "wsgi")
WSGI_FILE = ("wsgi-file", "file")
CALLABLE = ("callable",)
PYTHONPATH = ("pythonpath", "python-path", "pp")
ENV = ("env",)
#: any of these loads an app
APP = (*MODULE, *WSGI_FILE, "mount", "eval", "paste")
MASTER = ("master",)
LAZY_APPS = ("lazy-apps",)
PROCESSES = ("processes", "workers", "p")
DAEMONIZE = ("daemonize", "daemonize2")
#: touch options fnud honours through its own gated reload
TOUCH_RELOAD = ("touch-chain-reload", "touch-reload")
STATS = ("stats", "stats-server")
#: options with which the ini sends uWSGI's log elsewhere; fnud then leaves it be
LOGGING = ("logto", "logto2", "logger", "log-socket")
USER = ("uid",)
GROUP = ("gid",)
#: options fnud takes away from uWSGI: they would escape supervision (daemonize), bypass
#: the reload gate (touch-*) or serve worker stats to every local user (stats)
TAKEN_AWAY = frozenset({*DAEMONIZE, *STATS, *TOUCH_RELOAD})
#: options that only a root master applies: with [fnud] user the master is never root
NEEDS_ROOT = frozenset({"uid", "gid", "chroot", "cap", "emperor-use-clone"})


def runs_as_root(key: str) -> bool:
    """``exec-as-root``, ``hook-as-root``, ``master-as-root``...: root's hooks, which fnud
    comments out (defence in depth: its master is never root with [fnud] user)."""
    return key.endswith("-as-root")


#: options that load more configuration: what this file lacks may come from there
INCLUDES = frozenset(
    {"ini", "include", "inherit", "xml", "xmlconfig", "yaml", "yml", "json", "js", "config",
     "sqlite3", "ldap"}
)
#: socket options and the protocol they speak (None: the default, see ``protocol``)
SOCKETS: dict[str, str | None] = {
    "socket": None, "uwsgi-socket": "uwsgi", "suwsgi-socket": "uwsgi",
    "ssl-socket": "uwsgi", "http-socket": "http", "https-socket": "http", "http": "http",
    "https": "http", "fastcgi-socket": "fastcgi", "fastcgi-nph-socket": "fastcgi",
    "scgi-socket": "scgi", "scgi-nph-socket": "scgi", "shared-socket": "",
}
SOCKET_PROTOCOL = ("protocol", "socket-protocol")
#: socket options that take a socket fnud holds (``fd://N``)
HOLDABLE_SOCKETS = ("socket", "uwsgi-socket", "http-socket")
#: options that cannot work on a socket uWSGI did not bind itself
UNSHAREABLE = ("http", "https", "reuse-port", "shutdown-sockets")
#: socket options whose value is "address,cert,key..."
COMMA_SOCKETS = frozenset({"https", "https-socket", "ssl-socket", "suwsgi-socket"})
#: files uWSGI creates, and whether a relative name is relative to the ini's directory
#: (written before chdir) or to the chdir directory (after it)
RUNTIME_FILES = {
    "pidfile": "start", "safe-pidfile": "start",
    "pidfile2": "chdir", "safe-pidfile2": "chdir", "master-fifo": "chdir",
}
#: list options: every line adds one (``master-fifo``: the first is slot 0, so fnud's own
#: ``--master-fifo`` goes before ``--ini``)
LIST_OPTIONS = frozenset(
    {*PYTHONPATH, *ENV, *TOUCH_RELOAD, *SOCKETS, *INCLUDES, "master-fifo", "mount"}
)


def last(ini: UwsgiIni, names: tuple[str, ...]) -> Option | None:
    """The option that sets a single-valued setting: its last line under any alias."""
    if names[0] in LIST_OPTIONS:
        raise ValueError(f"{names[0]} is a list option: use every()")
    found = None
    for opt in ini:
        if opt.key in names:
            found = opt
    return found


def every(ini: UwsgiIni, names: tuple[str, ...] | frozenset[str]) -> list[Option]:
    """Every line of a list option (under any alias), in file order."""
    return [opt for opt in ini if opt.key in names]


def flag(ini: UwsgiIni, names: tuple[str, ...]) -> bool:
    """A boolean option as uWSGI reads it: present and not false/0/no/off."""
    opt = last(ini, names)
    return opt is not None and opt.value.strip().lower() not in ("false", "0", "no", "off")


def includes_others(ini: UwsgiIni) -> bool:
    return any(opt.key in INCLUDES for opt in ini)


# -- placeholders ------------------------------------------------------------------------
_MAGIC_RE = re.compile(r"%([dpsnec%])")
_TOKEN_RE = re.compile(r"%\(([^)]*)\)|@\(([^)]*)\)|\$\(([^)]*)\)|%(.)", re.DOTALL)


def expand_magic(value: str, ini_path: Path) -> str:
    """Expand the magic variables of the ini's location (%d %p %s %n %e %c %%).

    The adapter applies this alone to the copy of the ini it renders in the runtime dir,
    leaving ``$(VAR)`` and ``%(option)`` to uWSGI.
    """
    table = {
        "d": str(ini_path.parent) + "/",
        "p": str(ini_path),
        "s": ini_path.name,
        "n": ini_path.stem,
        "e": ini_path.suffix,
        "c": ini_path.parent.name,
        "%": "%",
    }
    return _MAGIC_RE.sub(lambda m: table[m.group(1)], value)


def resolve(
    value: str,
    ini_path: Path,
    ini: UwsgiIni,
    environ: Mapping[str, str],
    *,
    strict: bool = True,
) -> str | None:
    """``value`` with its placeholders expanded against ``environ`` (what uWSGI gets).

    ``strict`` (fnud check, which may run in another environment than the daemon): None
    when a placeholder cannot be known here (``@(file)``, an unset ``$(VAR)``, ``%t``,
    ...), so that no check reports a path it could not really compute. Not strict (the
    preflight and the adapter, which run where uWSGI will): what uWSGI itself makes of
    it, unknown placeholders kept literally (as uWSGI keeps an unset ``$(VAR)``).
    """
    return _resolve(value, ini_path, ini, environ, strict, 0)


def _resolve(
    value: str,
    ini_path: Path,
    ini: UwsgiIni,
    environ: Mapping[str, str],
    strict: bool,
    depth: int,
) -> str | None:
    unknown = False

    def sub(match: re.Match[str]) -> str:
        nonlocal unknown
        ref, _file, env, magic = match.groups()
        if ref is not None:
            target = ini.value(ref)
            if target is not None and depth < 3:
                resolved = _resolve(target, ini_path, ini, environ, strict, depth + 1)
                if resolved is not None:
                    return resolved
        elif env is not None:
            if env in environ:
                return environ[env]
        elif magic is not None and magic in "dpsnec%":
            return expand_magic("%" + magic, ini_path)
        unknown = True  # @(file), %(_), an unset $(VAR), %k, %t ...: known only at runtime
        return match.group(0)

    out = _TOKEN_RE.sub(sub, value)
    return None if unknown and strict else out


def resolve_path(
    value: str,
    base: Path | None,
    ini_path: Path,
    ini: UwsgiIni,
    environ: Mapping[str, str],
    *,
    strict: bool = True,
) -> Path | None:
    """An absolute path for ``value``, relative ones against ``base``; None if unknowable."""
    resolved = resolve(value, ini_path, ini, environ, strict=strict)
    if resolved is None or not resolved or "\0" in resolved:
        return None
    path = Path(resolved)
    if path.is_absolute():
        return path
    return base / path if base is not None else None


def chdir(
    ini: UwsgiIni, ini_path: Path, environ: Mapping[str, str], *, strict: bool = True
) -> Path | None:
    """Where uWSGI's ``chdir`` leads (fnud starts uWSGI in the ini's directory, so a
    relative chdir is relative to that); the ini's directory without one."""
    option = last(ini, CHDIR)
    if option is None:
        return ini_path.parent
    return resolve_path(option.value, ini_path.parent, ini_path, ini, environ, strict=strict)


def env_lines(
    ini: UwsgiIni, ini_path: Path, environ: Mapping[str, str]
) -> dict[str, str]:
    """The variables ``env = KEY=VALUE`` lines give the app, expanded like uWSGI does."""
    out: dict[str, str] = {}
    for opt in every(ini, ENV):
        expanded = resolve(opt.value, ini_path, ini, environ, strict=False) or ""
        if "=" in expanded:
            key, _, value = expanded.partition("=")
            out[key] = value
    return out
