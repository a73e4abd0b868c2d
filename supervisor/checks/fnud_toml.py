"""fnud.toml: syntax, unknown keys, wrong types, and the files and binaries it names."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from supervisor.checks.finding import Finding, error, warning
from supervisor.checks.inputs import Inputs
from supervisor.config.parse import ConfigError, load_config, locate
from supervisor.config.schema import Config
from supervisor.nginx import driver as nginx
from supervisor.uwsgi import driver as uwsgi


def _absolute(path: Path) -> Path:
    try:
        return path if path.is_absolute() else Path.cwd() / path
    except OSError:  # the current directory was removed
        return path


def load(path: Path) -> tuple[Config | None, list[Finding]]:
    """Parse fnud.toml; every mistake becomes a finding (never raises)."""
    try:
        return load_config(_absolute(path)), []
    except ConfigError as exc:
        return None, [error(exc.path, exc.line, exc.message, exc.hint)]


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
    server = config.app_server
    files = [("uwsgi", "ini", config.uwsgi.ini)] if server == "uwsgi" else []
    if server == "gunicorn" and config.gunicorn.conf is not None:
        files.append(("gunicorn", "conf", config.gunicorn.conf))
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
    for section, found, configured, install in (
        ("uwsgi", uwsgi_found if server == "uwsgi" else "", config.uwsgi.binary or "uwsgi",
         "pip install uwsgi in fnud's virtualenv"),
        ("nginx", nginx_found, config.nginx.binary, "apt-get install nginx-light"),
    ):
        if found is None:
            out.append(error(
                where, locate(text, section, "binary"),
                f"{section} binary not found ({configured})",
                f"{install}, or set [{section}] binary",
            ))
    section = "gunicorn" if server == "gunicorn" else "uwsgi"
    python = config.gunicorn.python if server == "gunicorn" else config.uwsgi.python
    if python and _which(python) is None:
        out.append(error(
            where, locate(text, section, "python"),
            f"[{section}] python: {python} is not an executable",
            "name the interpreter of your app's virtualenv, or leave it empty",
        ))
    return out + balancer_spelling(config, text)


def balancer_spelling(config: Config, text: str) -> list[Finding]:
    """`[uwsgi] enabled = false`: still works, but says "no app server" the old way."""
    if config.uwsgi.enabled or config.fnud.balancer:
        return []
    return [warning(
        config.path, locate(text, "uwsgi", "enabled"),
        "[uwsgi] enabled = false is the older spelling of balancer mode",
        "write [fnud] balancer = true instead (and drop [uwsgi])",
    )]
