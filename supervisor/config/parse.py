"""fnud.toml -> :class:`~supervisor.config.schema.Config`.

No OS calls in ``parse_config``: it takes the text and the file's path and only does
string and path arithmetic. Relative paths are relative to the TOML file's directory.
Every error is a ``ConfigError`` that names the file and line.
"""

from __future__ import annotations

import os
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any

from supervisor.common.ports import is_loopback, parse_listen
from supervisor.config.errors import HINT_SPELLING, HINT_SYNTAX
from supervisor.config.errors import ConfigError as ConfigError  # (re-exported)
from supervisor.config.errors import locate as locate
from supervisor.config.gunicorn import validate_gunicorn
from supervisor.config.schema import SECTIONS, Config, WebSection, keys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


_TOML_LINE_RE = re.compile(r"at line (\d+)")


def _convert(value: Any, hint: Any, base: Path) -> Any:
    """Convert a TOML value to the field's type; raise TypeError with what was expected."""
    if hint is Path:
        if not isinstance(value, str) or not value:
            raise TypeError("a non-empty path string")
        try:
            path = Path(value).expanduser() if value.startswith("~") else Path(value)
        except (RuntimeError, ValueError):  # ~user that does not exist, a NUL in the name
            raise TypeError(f"a path whose home directory exists, not {value!r}") from None
        return Path(os.path.normpath(path if path.is_absolute() else base / path))
    if hint is bool:
        if not isinstance(value, bool):
            raise TypeError("true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError("an integer")
        if value < 0:
            raise TypeError("a non-negative integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError("a number")
        if value < 0:
            raise TypeError("a non-negative number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise TypeError("a string")
        return value
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint):
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return _convert(value, inner, base)  # an optional key: absent means None
    if origin is tuple:
        (item,) = {a for a in typing.get_args(hint) if a is not Ellipsis}
        if not isinstance(value, list):
            raise TypeError("a list")
        return tuple(_convert(v, item, base) for v in value)
    raise TypeError(f"unsupported type {hint}")  # pragma: no cover


def _build_section(
    name: str, table: Any, text: str, where: str, base: Path
) -> Any:
    cls = SECTIONS[name]
    if not isinstance(table, dict):
        raise ConfigError(where, locate(text, name, None), f"[{name}] must be a table")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in keys(cls)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        line = locate(text, name, key)
        if key not in known:
            choices = ", ".join(sorted(known))
            raise ConfigError(
                where, line, f"unknown key '{key}' in [{name}] (known: {choices})", HINT_SPELLING
            )
        try:
            values[key] = _convert(value, hints[key], base)
        except TypeError as exc:
            raise ConfigError(where, line, f"[{name}] {key} must be {exc}") from None
    default_base_paths = {
        f.name: Path(os.path.normpath(base / getattr(cls(), f.name)))
        for f in keys(cls)
        if hints[f.name] is Path and f.name not in values
    }
    return cls(**default_base_paths, **values)


def parse_config(text: str, path: Path) -> Config:
    """Parse fnud.toml text; ``path`` names the file for messages and relative paths."""
    where = str(path)
    base = path.parent
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _TOML_LINE_RE.search(message)
        line = int(match.group(1)) if match else 1
        message = _TOML_LINE_RE.sub("", message).split("(")[0].strip().rstrip(",")
        raise ConfigError(where, line, f"invalid TOML: {message}", HINT_SYNTAX) from None
    for name in data:
        if name not in SECTIONS:
            line = locate(text, name, None)
            choices = ", ".join(f"[{s}]" for s in SECTIONS)
            raise ConfigError(
                where, line, f"unknown section [{name}] (known: {choices})", HINT_SPELLING
            )
    if "uwsgi" in data and "gunicorn" in data:
        raise ConfigError(
            where, locate(text, "gunicorn", None),
            "[uwsgi] and [gunicorn] are both set: fnud runs one app server",
            "keep the section of the one you run",
        )
    sections = {
        name: _build_section(name, data.get(name, {}), text, where, base) for name in SECTIONS
    }
    server = "gunicorn" if "gunicorn" in data else "uwsgi"
    config = Config(path=path, server=server, **sections)
    _validate(config, text, where)
    return config


def _validate(config: Config, text: str, where: str) -> None:
    url = config.health.url
    match = re.match(r"^http://(\[[0-9a-fA-F:]+\]|[^/:\s]+)(:(\d+))?(/\S*)?$", url)
    if not match or (match.group(3) and not 0 < int(match.group(3)) < 65536):
        line = locate(text, "health", "url")
        raise ConfigError(
            where, line, f"[health] url must be an http:// URL with a port in 1-65535, got '{url}'"
        )
    for section in ("metrics", "web"):
        listen = getattr(config, section).listen
        if listen and parse_listen(listen) is None:
            line = locate(text, section, "listen")
            raise ConfigError(
                where, line,
                f"[{section}] listen must be HOST:PORT (port 1-65535), got '{listen}'",
            )
    _validate_web(config.web, text, where)
    if config.uwsgi.reload not in ("generation", "chain"):
        line = locate(text, "uwsgi", "reload")
        raise ConfigError(
            where, line,
            f"[uwsgi] reload must be \"generation\" or \"chain\", got '{config.uwsgi.reload}'",
        )
    validate_gunicorn(config, text, where)
    for path in config.health.smoke:
        if not path.startswith("/"):
            line = locate(text, "health", "smoke")
            raise ConfigError(where, line, f"[health] smoke paths start with /, got '{path}'")
    if config.backoff.max < config.backoff.initial:
        line = locate(text, "backoff", "max")
        raise ConfigError(where, line, "[backoff] max must be >= initial")


MIN_TOKEN = 16


def _validate_web(web: WebSection, text: str, where: str) -> None:
    if web.token and (len(web.token) < MIN_TOKEN or not web.token.isprintable()
                      or " " in web.token):
        line = locate(text, "web", "token")
        raise ConfigError(
            where, line,
            f"[web] token must be {MIN_TOKEN}+ printable characters without spaces",
            "make one: python3 -c 'import secrets; print(secrets.token_urlsafe())'",
        )
    host = web.listen.rpartition(":")[0]
    if web.listen and not web.token and not is_loopback(host):
        line = locate(text, "web", "listen")
        raise ConfigError(
            where, line, f"[web] listen on {host} (beyond loopback) needs a [web] token"
        )


def restart_required(old: Config, new: Config) -> list[str]:
    """Settings a reload cannot apply to running processes: they need stop + start."""
    fields = {
        "[fnud] runtime_dir": (old.fnud.runtime_dir, new.fnud.runtime_dir),
        "[fnud] log_dir": (old.fnud.log_dir, new.fnud.log_dir),
        "[fnud] user": (old.fnud.user, new.fnud.user),
        "[fnud] group": (old.fnud.group, new.fnud.group),
        "the app server": (old.app_server, new.app_server),
        "[nginx] conf": (old.nginx.conf, new.nginx.conf),
        "[nginx] prefix": (old.nginx_prefix, new.nginx_prefix),
    }
    return [name for name, (before, after) in fields.items() if before != after]


def load_config(path: Path) -> Config:
    """Read and parse; an unreadable file is a ConfigError too."""
    absolute = path if path.is_absolute() else Path.cwd() / path
    try:
        raw = absolute.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            path, 0, "config file not found", "pass -c FILE or set $FNUD_CONFIG"
        ) from None
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(path, 0, f"cannot read config: {reason}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(path, line, "not valid UTF-8", "TOML files must be UTF-8") from None
    return parse_config(text, absolute)
