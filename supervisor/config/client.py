"""The few fnud.toml settings the thin commands need, read without the full config parser.

`fnud status`, `reload`, `stop`, `reopen-logs` and `logs` only talk to the daemon or read
its files: they need the runtime dir, the log dir and a few timeouts. This reads those with
tomllib and config.py's path rules (relative to the TOML file's directory, ``~`` expanded,
normalised). Anything it cannot read the same way (a missing file, bad TOML, a wrong type)
gives None: the caller then loads the full config, whose one-line error names the file and
line. The daemon validated the rest of the file when it loaded it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from supervisor.runtime.paths import Paths

if TYPE_CHECKING:
    from supervisor.config.schema import Config

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: (section, key, default) of every setting read here; defaults as in config.py
_NUMBERS = {
    ("fnud", "stop_timeout"): 20.0,
    ("fnud", "start_timeout"): 30.0,
    ("uwsgi", "reload_timeout"): 90.0,  # gunicorn's reload is bounded by start_timeout
    ("nginx", "reload_timeout"): 30.0,
    ("reload", "settle"): 10.0,
}


class ClientConfig(NamedTuple):
    """(A NamedTuple: `fnud status` imports this; dataclasses' import costs it.)"""

    path: Path
    runtime_dir: Path
    log_dir: Path
    nginx_prefix: Path
    stop_timeout: float
    start_timeout: float
    uwsgi_reload_timeout: float
    nginx_reload_timeout: float
    reload_settle: float
    app_program: str = "uwsgi"  # the app server's program (its log: app_program.log)

    @property
    def paths(self) -> Paths:
        return Paths(self.runtime_dir, self.nginx_prefix, self.log_dir)

    @property
    def reload_budget(self) -> float:
        """How long `fnud reload` or `rollback` waits for the daemon's answer."""
        return (self.uwsgi_reload_timeout + self.nginx_reload_timeout + self.reload_settle
                + self.start_timeout + 120)


def config_path(explicit: str | None, environ: Mapping[str, str]) -> Path:
    """``-c`` first, then ``$FNUD_CONFIG``, then ``./config/fnud.toml``."""
    if explicit:
        return Path(explicit)
    if environ.get("FNUD_CONFIG"):
        return Path(environ["FNUD_CONFIG"])
    return Path("config/fnud.toml")


def from_config(config: Config) -> ClientConfig:
    """The same settings taken from a fully parsed config."""
    return ClientConfig(
        path=config.path, runtime_dir=config.fnud.runtime_dir, log_dir=config.fnud.log_dir,
        nginx_prefix=config.nginx_prefix, stop_timeout=config.fnud.stop_timeout,
        start_timeout=config.fnud.start_timeout,
        uwsgi_reload_timeout=config.uwsgi.reload_timeout,
        nginx_reload_timeout=config.nginx.reload_timeout, reload_settle=config.reload.settle,
        app_program=config.server,
    )


def _path(value: Any, base: Path) -> Path | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        path = Path(value).expanduser() if value.startswith("~") else Path(value)
    except RuntimeError:
        return None
    return Path(os.path.normpath(path if path.is_absolute() else base / path))


def read(path: Path) -> ClientConfig | None:
    """The thin commands' settings from fnud.toml at ``path``; None: ask config.py."""
    absolute = path if path.is_absolute() else Path.cwd() / path
    try:
        data = tomllib.loads(absolute.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    base = absolute.parent
    tables = {name: data.get(name, {}) for name in ("fnud", "uwsgi", "nginx", "reload")}
    if not all(isinstance(table, dict) for table in tables.values()):
        return None
    runtime_dir = _path(tables["fnud"].get("runtime_dir", "run"), base)
    log_dir = _path(tables["fnud"].get("log_dir", "log"), base)
    prefix = tables["nginx"].get("prefix", "")
    numbers = {}
    for (section, key), default in _NUMBERS.items():
        value = tables[section].get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            return None
        numbers[f"{section}_{key}"] = float(value)
    if runtime_dir is None or log_dir is None or not isinstance(prefix, str):
        return None
    nginx_prefix = (
        _path(prefix, base) if prefix else runtime_dir.with_name(runtime_dir.name + "-nginx")
    )
    assert nginx_prefix is not None
    return ClientConfig(
        path=absolute, runtime_dir=runtime_dir, log_dir=log_dir, nginx_prefix=nginx_prefix,
        stop_timeout=numbers["fnud_stop_timeout"],
        start_timeout=numbers["fnud_start_timeout"],
        uwsgi_reload_timeout=numbers["uwsgi_reload_timeout"],
        nginx_reload_timeout=numbers["nginx_reload_timeout"],
        reload_settle=numbers["reload_settle"],
        app_program="gunicorn" if "gunicorn" in data else "uwsgi",
    )
