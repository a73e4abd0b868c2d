"""What the checks look at, read once: the config, the TOML text, the ini, nginx.conf.

Reading never raises: a file that cannot be read is simply absent here (``fnud_toml``
reports why), and every check copes with what is missing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from supervisor.common.childenv import child_env
from supervisor.common.trust import read_untrusted
from supervisor.config.schema import Config
from supervisor.gunicorn.conf import ConfFile, read_conf
from supervisor.nginx import conf as nginx
from supervisor.runtime.lock import lock_holder
from supervisor.uwsgi.ini import UwsgiIni, parse_ini

#: variables an app server reads as its options: none reaches it
SERVER_VARIABLES = ("UWSGI_", "GUNICORN_")


@dataclass(frozen=True)
class Inputs:
    config: Config
    toml_text: str  # "" when fnud.toml cannot be read (errors_for on an in-memory config)
    ini: UwsgiIni | None  # None: the ini could not be read
    ini_text: str
    conf: nginx.NginxConf | None  # None: nginx.conf missing or unreadable
    environ: Mapping[str, str]  # what the app server and nginx get: fnud's, scrubbed
    gunicorn_conf: ConfFile | None = None  # [gunicorn] conf, read (never run); None: none

    @property
    def ini_path(self) -> Path:
        return self.config.uwsgi.ini

    @property
    def conf_path(self) -> Path:
        return self.config.nginx.conf

    @property
    def app_files(self) -> tuple[Path, ...]:
        """The app server's own config files, for the order findings are listed in."""
        return self.config.app_config_files


def read_text(path: Path) -> str | None:
    """The file's text (undecodable bytes kept as surrogates, like os paths), or None.
    Read as the app's files are (never through a link its user planted, no FIFO)."""
    try:
        return read_untrusted(path).decode("utf-8", errors="surrogateescape")
    except (OSError, ValueError):
        return None


def path_is(test: Callable[[Path], bool], path: Path) -> bool:
    """``test(path)`` (``Path.exists``, ``Path.is_file``, ``Path.is_dir``); False where the
    OS cannot answer (ENAMETOOLONG, a NUL byte...)."""
    try:
        return bool(test(path))
    except (OSError, ValueError):
        return False


def running_daemon(config: Config) -> int | None:
    """PID of the fnud daemon that holds this config's runtime dir (-1: unknown), or None."""
    try:
        return lock_holder(config.paths.lock)
    except (OSError, ValueError):
        return None


def gather(config: Config, environ: Mapping[str, str] | None = None) -> Inputs:
    toml_text = read_text(config.path) or ""
    ini_text = None
    if config.app_server == "uwsgi" and path_is(Path.is_file, config.uwsgi.ini):
        ini_text = read_text(config.uwsgi.ini)
    gunicorn_conf = None
    conf_file = config.gunicorn.conf
    if config.app_server == "gunicorn" and conf_file and path_is(Path.is_file, conf_file):
        conf_text = read_text(conf_file)
        gunicorn_conf = read_conf(conf_text, str(conf_file)) if conf_text is not None else None
    ini = parse_ini(ini_text) if ini_text is not None else None
    conf = None
    if path_is(Path.is_file, config.nginx.conf) and os.access(config.nginx.conf, os.R_OK):
        conf = nginx.analyze(config.nginx.conf)
    return Inputs(
        config=config,
        toml_text=toml_text,
        ini=ini,
        ini_text=ini_text or "",
        conf=conf,
        environ=child_env(os.environ if environ is None else environ, SERVER_VARIABLES),
        gunicorn_conf=gunicorn_conf,
    )
