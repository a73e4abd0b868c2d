"""What one fnud.toml means for the stack: its files read once, its programs' settings.

The composition root: the one place that chooses the app server (uWSGI or gunicorn)
and builds its adapter; everything else talks to it through appserver.port. A reload
checks a new config by building its Plan; the stack applies a Plan only after every
check passed. Nothing here starts or signals a process.
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import shutil
import sys
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path

from supervisor.appserver.port import AppDriver, AppServer
from supervisor.appserver.spec import AppSpec
from supervisor.common.childenv import child_env
from supervisor.config.gunicorn import parse_bind
from supervisor.config.parse import locate
from supervisor.config.schema import Config
from supervisor.gunicorn import driver as gunicorn_driver
from supervisor.gunicorn.app import GunicornSettings, gunicorn_spec
from supervisor.gunicorn.server import GunicornServer
from supervisor.nginx import driver as nginx_driver
from supervisor.nginx.conf import NginxConf, analyze, fingerprint
from supervisor.runtime.paths import Paths
from supervisor.runtime.release import Release
from supervisor.sockets.held import Holder, Spec
from supervisor.uwsgi import driver as uwsgi_driver
from supervisor.uwsgi.app import app_spec, release_spec
from supervisor.uwsgi.ini import UwsgiIni, parse_ini
from supervisor.uwsgi.options import resolve
from supervisor.uwsgi.render import release_dir, touch_files
from supervisor.uwsgi.server import UwsgiServer
from supervisor.uwsgi.sockets import unholdable, uwsgi_specs

#: what fnud's environment may not pass on: each server reads these as its options
SERVER_VARIABLES = ("UWSGI_", "GUNICORN_")


def app_server(config: Config) -> AppServer:
    """The app server ``config`` runs (uWSGI's in balancer mode, where none runs)."""
    return GunicornServer() if config.server == "gunicorn" else UwsgiServer()


class StackError(Exception):
    """Something that keeps the stack from starting: one line for the user."""


def primary_group(user: str) -> str:
    try:
        gid = pwd.getpwnam(user).pw_gid
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return ""


def file_digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


class Plan:
    def __init__(self, config: Config, environ: Mapping[str, str]) -> None:
        self.config = config
        self.environ = {k: v for k, v in environ.items() if not k.startswith(SERVER_VARIABLES)}
        self.paths: Paths = config.paths
        self.server = app_server(config)

    @property
    def gunicorn(self) -> bool:
        return self.config.server == "gunicorn"

    # -- the files -------------------------------------------------------------------

    @cached_property
    def ini(self) -> UwsgiIni:
        """The app server's ini (raises StackError when it cannot be read)."""
        path = self.config.uwsgi.ini
        try:
            return parse_ini(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise StackError(f"{path}: cannot read: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise StackError(
                f"{path}: not UTF-8 text (byte {exc.start}): save it as UTF-8"
            ) from None

    @cached_property
    def nginx_conf(self) -> NginxConf:
        return analyze(self.config.nginx.conf)

    def app(self) -> AppSpec:
        """What the app server will import (the preflight imports the same)."""
        if self.gunicorn:
            return gunicorn_spec(self.gunicorn_settings(Holder()))
        return app_spec(self.ini, self.config.uwsgi.ini, self.config.uwsgi.python, self.environ)

    def release_app(self, release: Release) -> AppSpec:
        """What a generation pinned to ``release`` loads (a rollback preflights it)."""
        config = self.config
        if self.gunicorn:
            return gunicorn_spec(self.gunicorn_settings(Holder()), release.source)
        return release_spec(release.source, config.uwsgi.ini, config.uwsgi.python, self.environ)

    def loads(self, release: Release) -> bool:
        """A generation of this config's app server can load ``release``."""
        if self.gunicorn:
            return release.server == self.server.name
        return release.server in ("", self.server.name)  # "": written before gunicorn

    def ini_digest(self) -> str:
        """The app server's config file as it is now."""
        files = self.config.app_config_files
        return file_digest(files[0]) if files else ""

    def nginx_digest(self) -> str:
        return fingerprint(self.nginx_conf)

    def release_dir(self) -> str:
        """Where the app's directory resolves now (through any symlink)."""
        if self.gunicorn:
            return os.path.realpath(self.config.gunicorn.chdir)
        return release_dir(self.ini, self.config.uwsgi.ini, self.environ)

    def touch_files(self) -> list[Path]:
        if self.config.balancer or self.gunicorn:
            return []
        return touch_files(
            self.ini, self.config.uwsgi.ini, Path(self.app().chdir), self.environ
        )

    def app_specs(self) -> list[Spec]:
        """The app server's listening sockets, as its config names them."""
        if self.gunicorn:
            return [self.bind_spec()]
        return self.uwsgi_specs()

    def bind_spec(self) -> Spec:
        """[gunicorn] bind as a socket fnud holds."""
        config = self.config
        value = config.gunicorn.bind
        try:
            line = locate(config.path.read_text(encoding="utf-8"), "gunicorn", "bind")
        except (OSError, UnicodeDecodeError):
            line = 0
        where = f"{config.path}:{line}"
        bound = parse_bind(value)
        if isinstance(bound, str):
            return Spec(where, line, value, None, path=bound)
        return Spec(where, line, value, bound)

    def uwsgi_specs(self) -> list[Spec]:
        path = self.config.uwsgi.ini
        env = child_env(self.environ)
        ini = self.ini
        return uwsgi_specs(
            ini, str(path), lambda v: resolve(v, path, ini, env, strict=False) or v
        )

    @cached_property
    def generation_mode(self) -> bool:
        """Reloads start a new generation: configured so, and every socket can be held."""
        if self.gunicorn:
            return True  # its one bind is always held
        if self.config.uwsgi.reload != "generation":
            return False
        try:
            specs = self.uwsgi_specs()
        except StackError:
            return False
        return bool(specs) and not unholdable(self.ini, str(self.config.uwsgi.ini))

    # -- who runs it -----------------------------------------------------------------

    def identity(self) -> tuple[str, str]:
        """(user, group) the workers run as when fnud is root; ('', '') to leave it be."""
        user = self.config.fnud.user
        return user, self.config.fnud.group or (primary_group(user) if user else "")

    def _ini_identity(self) -> tuple[str, str]:
        """uWSGI's uid/gid from its ini (gunicorn's workers: [fnud] user alone)."""
        if self.gunicorn or self.config.balancer:
            return "", ""
        return self.ini.value("uid") or "", self.ini.value("gid") or ""

    @cached_property
    def owner(self) -> tuple[int, int] | None:
        """(uid, gid) the workers run as when fnud is root: [fnud] user/group, else the
        ini's uid/gid; None when not root or neither is set (or the user is unknown)."""
        if os.geteuid() != 0:
            return None
        user, group = self.identity()
        if not user:
            try:
                user, group = self._ini_identity()
            except StackError:
                return None
        if not user:
            return None
        try:
            entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
            if not group:
                gid = entry.pw_gid
            else:
                gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
        except KeyError:
            return None  # fnud check reports an unknown user
        return entry.pw_uid, gid

    def root_refusal(self) -> str:
        """Why fnud must not start the app as root ('' when it may)."""
        config = self.config
        fnud = config.fnud
        if os.geteuid() != 0 or fnud.user or fnud.allow_root or config.balancer:
            return ""  # (balancer mode runs no app; nginx's workers drop root themselves)
        if self._ini_identity()[0]:
            return ""
        where = "" if self.gunicorn else f" or uid in {config.uwsgi.ini}"
        return (
            f"refusing to run the app as root: set [fnud] user (e.g. \"www-data\") in "
            f"{config.path}{where}, or [fnud] allow_root = true to run it as root anyway"
        )

    # -- the binaries ----------------------------------------------------------------

    def uwsgi_binary(self) -> str:
        configured = self.config.uwsgi.binary
        return uwsgi_driver.find_binary(configured) or configured or "uwsgi"

    def nginx_binary(self) -> str:
        configured = self.config.nginx.binary
        return nginx_driver.find_binary(configured) or configured

    def gunicorn_python(self) -> str:
        configured = self.config.gunicorn.python
        return shutil.which(configured) or configured if configured else sys.executable

    def check_binaries(self) -> None:
        config = self.config
        if self.gunicorn and not config.balancer:
            if not os.access(self.gunicorn_python(), os.X_OK):
                raise StackError(
                    f"[gunicorn] python {config.gunicorn.python} is not an executable: name "
                    "the python of the app's virtualenv (gunicorn installed in it)"
                )
        elif not config.balancer and not os.access(self.uwsgi_binary(), os.X_OK):
            raise StackError(
                f"uwsgi binary not found ({config.uwsgi.binary or 'uwsgi'}): "
                "pip install uwsgi, or set [uwsgi] binary"
            )
        if not os.access(self.nginx_binary(), os.X_OK):
            raise StackError(
                f"nginx binary not found ({config.nginx.binary}): "
                "apt-get install nginx-light, or set [nginx] binary"
            )

    # -- the programs' settings ------------------------------------------------------

    def app_driver(
        self, holder: Holder, number: int = 1, source: Release | None = None,
        require_all: bool = False, running: str = "", paused: bool = False,
    ) -> AppDriver:
        """Generation ``number`` of the app server (see the adapters' constructors)."""
        if self.gunicorn:
            return gunicorn_driver.GunicornDriver(
                self.gunicorn_settings(holder), number, source, require_all, running, paused
            )
        return uwsgi_driver.UwsgiDriver(
            self.uwsgi_settings(holder), number, source, require_all, running, paused
        )

    def app_log(self) -> Path:
        return self.config.fnud.log_dir / f"{self.server.name}.log"

    def gunicorn_settings(self, holder: Holder) -> GunicornSettings:
        section = self.config.gunicorn
        user, group = self.identity()
        return GunicornSettings(
            python=self.gunicorn_python(), app=section.app, chdir=section.chdir,
            bind=self.bind_spec(), workers=section.workers, threads=section.threads,
            conf=section.conf, paths=self.paths, environ=self.environ,
            log_path=self.app_log(), holder=holder, user=user, group=group,
            owner=self.owner,
        )

    def uwsgi_settings(self, holder: Holder) -> uwsgi_driver.UwsgiSettings:
        user, group = self.identity()
        return uwsgi_driver.UwsgiSettings(
            binary=self.uwsgi_binary(), ini_path=self.config.uwsgi.ini, paths=self.paths,
            environ=self.environ, log_path=self.app_log(),
            holder=holder, user=user, group=group, owner=self.owner,
            pinned=self.generation_mode, log_master=self.config.uwsgi.log_master,
        )

    def nginx_settings(self, holder: Holder) -> nginx_driver.NginxSettings:
        user, group = self.identity()
        return nginx_driver.NginxSettings(
            binary=self.nginx_binary(), conf_path=self.config.nginx.conf,
            prefix=self.paths.nginx_prefix, env=child_env(self.environ),
            log_path=self.config.fnud.log_dir / "nginx.log", holder=holder,
            user=user, group=group,
        )

    def nginx_worker_uid(self) -> int | None:
        return nginx_driver.worker_uid(self.nginx_conf, self.config.fnud.user)
