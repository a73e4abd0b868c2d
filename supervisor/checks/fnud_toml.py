"""fnud.toml: syntax, unknown keys, wrong types, and the files and binaries it names."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from supervisor import nginx, uwsgi
from supervisor.checks.finding import Finding, error
from supervisor.checks.inputs import Inputs
from supervisor.config import Config, ConfigError, locate, parse_config

_LINE_RE = re.compile(r"(\d+): (.*)", re.DOTALL)
_TILDE_RE = re.compile(r"""=\s*\[?\s*["']~""")


def _absolute(path: Path) -> Path:
    try:
        return path if path.is_absolute() else Path.cwd() / path
    except OSError:  # the current directory was removed
        return path


def _hint_for(message: str) -> str:
    if "invalid TOML" in message:
        return "fix the TOML syntax at this line"
    if "unknown key" in message or "unknown section" in message:
        return "check the spelling against the README's Configuration section"
    return "see the README's Configuration section"


def load(path: Path) -> tuple[Config | None, list[Finding]]:
    """Parse fnud.toml; every mistake becomes a finding (never raises)."""
    absolute = _absolute(path)
    where = str(absolute)
    try:
        raw = absolute.read_bytes()
    except FileNotFoundError:
        return None, [error(where, 0, "config file not found", "pass -c FILE or set $FNUD_CONFIG")]
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return None, [error(where, 0, f"cannot read config: {reason}")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        return None, [error(where, line, "not valid UTF-8", "TOML files must be UTF-8")]
    try:
        return parse_config(text, absolute), []
    except ConfigError as exc:
        message = str(exc)
        rest = message.removeprefix(where + ":")
        match = _LINE_RE.match(rest) if rest != message else None
        if match:
            line, text_ = int(match.group(1)), match.group(2)
        else:
            line, text_ = 0, message
        return None, [error(where, line, text_, _hint_for(text_))]
    except (RuntimeError, ValueError) as exc:  # e.g. "~nosuchuser/run": no home directory
        line = next(
            (n for n, s in enumerate(text.splitlines(), start=1) if _TILDE_RE.search(s)), 0
        )
        return None, [error(where, line, f"cannot use this value: {exc}")]


def _problem(path: Path) -> str | None:
    """Why ``path`` cannot be read as a config file, or None."""
    try:
        if not path.exists():
            return "not found"
        if not path.is_file():
            return "is not a file"
    except (OSError, ValueError) as exc:
        return str(exc)
    if not os.access(path, os.R_OK):
        return "is not readable"
    return None


def _which(name: str) -> str | None:
    try:
        return shutil.which(name)
    except (OSError, ValueError):
        return None


def check(inputs: Inputs) -> list[Finding]:
    """The files and programs fnud.toml names exist."""
    config, text = inputs.config, inputs.toml_text
    where = str(config.path)
    out = []
    files = [("uwsgi", "ini", config.uwsgi.ini)] if config.uwsgi.enabled else []
    for section, key, path in (*files, ("nginx", "conf", config.nginx.conf)):
        problem = _problem(path)
        if problem:
            out.append(error(
                where, locate(text, section, key), f"[{section}] {key}: {path} {problem}",
                f"set [{section}] {key} to your file; a relative path is relative to "
                f"{config.base_dir}",
            ))
    try:
        uwsgi_found = uwsgi.find_binary(config.uwsgi.binary)
        nginx_found = nginx.find_binary(config.nginx.binary)
    except (OSError, ValueError):
        uwsgi_found = nginx_found = None
    if uwsgi_found is None and config.uwsgi.enabled:
        out.append(error(
            where, locate(text, "uwsgi", "binary"),
            f"uwsgi binary not found ({config.uwsgi.binary or 'uwsgi'})",
            "pip install uwsgi in fnud's virtualenv, or set [uwsgi] binary",
        ))
    if nginx_found is None:
        out.append(error(
            where, locate(text, "nginx", "binary"),
            f"nginx binary not found ({config.nginx.binary})",
            "apt-get install nginx-light, or set [nginx] binary",
        ))
    python = config.uwsgi.python
    if python and _which(python) is None:
        out.append(error(
            where, locate(text, "uwsgi", "python"),
            f"[uwsgi] python: {python} is not an executable",
            "name the interpreter of your app's virtualenv, or leave it empty",
        ))
    return out
