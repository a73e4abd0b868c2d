"""The user's uwsgi.ini -> the same app, ready for fnud. Pure: text in, text and edits out.

uWSGI reads an ini as supervisor.ini does: a comment line starts with ``;`` or ``#``, and
an inline ``# comment`` after a value is part of the value. The fixes make the findings
of ``fnud check`` (supervisor.checks.uwsgi_ini) go away where a machine can fix them:
inline comments move to their own line, ``daemonize``, ``pidfile``, a TCP ``stats``, a
``master-fifo`` and a boolean ``touch-*reload`` go, ``master = true`` comes.

The new ini lives in another directory, and fnud starts uWSGI there: ``%d``-style magic
variables are expanded for the original ini, relative paths made absolute the way uWSGI
resolved them when started from the original ini's directory (``chdir`` against that
directory, the others against ``chdir``), and an ini without ``chdir`` gets one naming
the original directory, so that ``module`` imports from where it did.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from supervisor.adopt.errors import InitError
from supervisor.checks import uwsgi_values as values
from supervisor.uwsgi import options
from supervisor.uwsgi.ini import Option, UwsgiIni, parse_ini

#: values of touch-*reload that mean "on" to a human and a file name to uWSGI
#: (supervisor.checks.uwsgi_ini warns about the same words)
BOOLEAN_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "1", "0", "enable"})
#: how uWSGI reads a boolean option as off (supervisor.uwsgi_options.flag)
FALSE_WORDS = frozenset({"false", "0", "no", "off"})
PIDFILES = ("pidfile", "pidfile2", "safe-pidfile", "safe-pidfile2")
PLUGINS = ("plugins", "plugin")
#: options whose relative path uWSGI resolves against its working directory after chdir
AFTER_CHDIR = frozenset(
    {*options.VIRTUALENV, *options.PYTHONPATH, *options.WSGI_FILE, *options.TOUCH_RELOAD}
)
#: socket options whose value is a path or an address (not "address,cert,key")
PATH_SOCKETS = frozenset(key for key in options.SOCKETS if key not in options.COMMA_SOCKETS)
_MAGIC_RE = re.compile(r"%([dpsnecDPSNECoO%])")
_UNKNOWN_START = ("$(", "@(", "%(", "/", "~")
MARK = "fnud init"


@dataclass(frozen=True)
class Edit:
    """One change: the original ini's line (its ``[uwsgi]`` line for an added option)."""

    line: int
    text: str


@dataclass(frozen=True)
class Source:
    """The original ini and what the new one must also say."""

    path: Path  # absolute
    debian_uwsgi: bool = False  # Debian's uwsgi-core: Python is a plugin
    venv: str = ""  # --venv (absolute): the app's virtualenv, added when the ini has none


@dataclass(frozen=True)
class FixedIni:
    text: str
    edits: tuple[Edit, ...]
    origin: tuple[int, ...]  # per line of ``text``: its line in the original (0: the top note)
    pidfile: str  # the original pidfile, absolute ("" without one): `uwsgi --stop` reads it
    venv: str  # the app's virtualenv in the new ini, absolute ("" when none or unknown)

    def original_line(self, line: int) -> int:
        return self.origin[line - 1] if 0 < line <= len(self.origin) else 0


@dataclass(frozen=True)
class _Lines:
    """What one original option line becomes: (text, original line) pairs, and why."""

    lines: tuple[tuple[str, int], ...]
    edits: tuple[Edit, ...]


def split_comment(value: str) -> tuple[str, str]:
    """(value, inline comment) as a human meant them; comment "" when there is none."""
    match = values.INLINE_COMMENT_RE.search(value)
    if match is None:
        return value, ""
    return value[: match.start()].rstrip(), value[match.start():].strip()


def expand_location(value: str, ini_path: Path) -> tuple[str, tuple[str, ...]]:
    """``value`` with the magic variables of the ini's location expanded for ``ini_path``
    (``%%`` stays, uWSGI makes it ``%``); and which ones were found."""
    found: list[str] = []

    def sub(match: re.Match[str]) -> str:
        letter = match.group(1)
        if letter == "%":
            return "%%"
        found.append("%" + letter)
        if letter in "oO":  # the config file as named on the command line
            return str(ini_path)
        return options.expand_magic("%" + letter.lower(), ini_path)

    return _MAGIC_RE.sub(sub, value), tuple(dict.fromkeys(found))


def absolute(value: str, base: Path | None) -> str | None:
    """``value`` made absolute against ``base``; None when it is absolute already, empty,
    starts with a placeholder (it may expand to an absolute path) or base is unknown."""
    if not value or base is None or value.startswith(_UNKNOWN_START):
        return None
    return str(base / value)


def _workdir(ini: UwsgiIni, source: Source) -> Path | None:
    """uWSGI's working directory after chdir, as it was (None: unknown here)."""
    option = options.last(ini, options.CHDIR)
    if option is None:
        return source.path.parent
    value = expand_location(split_comment(option.value)[0], source.path)[0]
    if value.startswith("/"):
        return Path(value)
    made = absolute(value, source.path.parent)
    return Path(made) if made is not None else None


def _drop_reason(key: str, value: str) -> str:
    """Why fnud init removes this option ("" to keep it)."""
    if key in options.DAEMONIZE:
        return ("it detaches uWSGI from fnud, which runs uWSGI attached and writes its log "
                "to [fnud] log_dir/uwsgi.log")
    if key in PIDFILES:
        return "fnud knows uWSGI's pid: `fnud stop` replaces `uwsgi --stop`"
    if key in options.STATS and (
        values.tcp_address(value.split(",")[0]) is not None or value.startswith("@")
    ):
        return ("every local user could read the worker stats there; fnud gives uWSGI a "
                "stats socket in its private runtime dir (`fnud status` shows them)")
    if key == "master-fifo":
        return ("fnud gives uWSGI its own fifo in its runtime dir: `fnud reload` replaces "
                "`echo c > mfifo`")
    if key in options.TOUCH_RELOAD and value.strip().lower() in BOOLEAN_WORDS:
        return (f"it watched a file named '{value}', it is not a switch; `fnud reload` "
                "reloads through fnud's checks")
    return ""


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _base_of(key: str, value: str, source: Source, workdir: Path | None) -> Path | None:
    """Where uWSGI resolved a relative path of this option; None: not a path option."""
    if key in options.CHDIR:
        return source.path.parent
    if key in AFTER_CHDIR:
        return workdir
    if key in PATH_SOCKETS and ":" not in value and not value.startswith(("@", "=")):
        return workdir  # a unix socket path (uWSGI binds after chdir)
    return None


def _new_value(opt: Option, value: str, source: Source, workdir: Path | None) -> tuple[
    str, tuple[Edit, ...]
]:
    """The option's value for the new ini, and the edits that made it."""
    edits: list[Edit] = []
    expanded, found = expand_location(value, source.path)
    if found:
        edits.append(Edit(opt.line, (
            f"expanded {', '.join(found)} in '{opt.key}' to the original ini's location: "
            f"'{_short(value)}' -> '{_short(expanded, 60)}'"
        )))
    value = expanded
    if opt.key in options.MASTER and value.strip().lower() in FALSE_WORDS:
        edits.append(Edit(opt.line, (
            f"set 'master = true' (was '{value}'): zero-downtime reloads need the master"
        )))
        return "true", tuple(edits)
    base = _base_of(opt.key, value, source, workdir)
    made = absolute(value, base) if base is not None else None
    if made is not None:
        where = "the original ini's directory" if opt.key in options.CHDIR else "chdir"
        edits.append(Edit(opt.line, (
            f"made '{opt.key} = {_short(value)}' absolute: '{_short(made, 60)}' (uWSGI "
            f"resolved it against {where}; the new ini lives elsewhere)"
        )))
        value = made
    return value, tuple(edits)


def _option_lines(
    opt: Option, raw: str, continued: list[tuple[str, int]], source: Source,
    workdir: Path | None,
) -> _Lines:
    """One option line (and the comment lines that continued its inline comment)."""
    value, comment = split_comment(opt.value)
    comments = ([(comment, opt.line)] if comment else []) + continued
    more = f" (and the {len(continued)} comment lines continuing it)" if continued else ""
    reason = _drop_reason(opt.key, value)
    if reason:
        kept = " (its comment kept above)" if comment else ""
        line = f"; {MARK} removed: {opt.key} = {value}"
        edit = Edit(opt.line, f"removed '{opt.key} = {_short(value)}'{kept}: {reason}")
        return _Lines((*comments, (line, opt.line)), (edit,))
    new, edits = _new_value(opt, value, source, workdir)
    if comment:
        moved = Edit(opt.line, (
            f"moved the inline comment '{_short(comment)}'{more} to its own line "
            "(uWSGI read it as part of the value)"
        ))
        edits = (moved, *edits)
    if not comment and new == value:
        return _Lines(((raw, opt.line),), ())
    return _Lines((*comments, (f"{opt.key} = {new}", opt.line)), edits)


def _additions(ini: UwsgiIni, source: Source) -> tuple[tuple[str, str, str], ...]:
    """(key, value, why) of the options the new ini needs and the original lacks."""
    out = []
    if source.debian_uwsgi and not any(opt.key in PLUGINS for opt in ini):
        out.append(("plugins", "python3", "Debian's uwsgi loads Python as a plugin "
                    "(package uwsgi-plugin-python3)"))
    if options.last(ini, options.CHDIR) is None:
        out.append(("chdir", str(source.path.parent), "uWSGI ran in the original ini's "
                    "directory; fnud starts it in the new ini's"))
    if source.venv and options.last(ini, options.VIRTUALENV) is None:
        out.append(("virtualenv", source.venv, "--venv: the app's packages are there"))
    if options.last(ini, options.MASTER) is None:
        out.append(("master", "true", "zero-downtime reloads need the master process"))
    return tuple(out)


def _continuations(lines: list[str], start: int) -> list[tuple[str, int]]:
    """Indented comment lines right after an inline comment: they continue it."""
    out = []
    for index in range(start, len(lines)):
        raw = lines[index]
        stripped = raw.strip(" \t\r")
        if not raw[:1].isspace() or not stripped or stripped[0] not in ";#":
            break
        out.append((stripped, index + 1))
    return out


def fix_ini(text: str, source: Source) -> FixedIni:
    """The new ini's text, every edit, and where each of its lines came from."""
    ini = parse_ini(text)
    if not ini.has_section:
        raise InitError(source.path, 0, "no options in a [uwsgi] section: uWSGI would "
                        "ignore this file (put the options under a line '[uwsgi]')")
    by_line = {opt.line: opt for opt in ini}
    workdir = _workdir(ini, source)
    lines = text.split("\n")
    note = f"; written by {MARK} from "
    out: list[tuple[str, int]] = [(note + str(source.path), 0)]
    edits: list[Edit] = []
    index = 0
    while index < len(lines):
        number = index + 1
        opt = by_line.get(number)
        if opt is None:
            if number > 1 or not lines[0].startswith(note):  # one note on top, not two
                out.append((lines[index], number))
            if number == ini.section_line:
                for key, value, why in _additions(ini, source):
                    out += [(f"; {MARK} added: {why}", number), (f"{key} = {value}", number)]
                    edits.append(Edit(number, f"added '{key} = {value}': {why}"))
            index += 1
            continue
        continued = _continuations(lines, number) if split_comment(opt.value)[1] else []
        result = _option_lines(opt, lines[index], continued, source, workdir)
        out += result.lines
        edits += result.edits
        index += 1 + len(continued)
    return FixedIni(
        text="\n".join(line for line, _ in out),
        edits=tuple(sorted(edits, key=lambda e: e.line)),
        origin=tuple(number for _, number in out),
        pidfile=_pidfile(ini, source),
        venv=_venv(parse_ini("\n".join(line for line, _ in out))),
    )


def _pidfile(ini: UwsgiIni, source: Source) -> str:
    """The original ini's pidfile, absolute (relative to the directory uWSGI started in)."""
    option = options.last(ini, ("pidfile", "safe-pidfile"))
    if option is None:
        return ""
    value = expand_location(split_comment(option.value)[0], source.path)[0]
    return absolute(value, source.path.parent) or value


def _venv(fixed: UwsgiIni) -> str:
    option = options.last(fixed, options.VIRTUALENV)
    if option is None or not option.value.startswith("/") or "$(" in option.value:
        return ""
    return option.value.rstrip("/") or "/"
