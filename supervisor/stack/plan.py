"""What one fnud.toml means for the stack: its files read once, its programs' settings.

The composition root: the one place that chooses the app server (uWSGI or gunicorn)
and builds its adapter; everything else talks to it through appserver.port. A reload
checks a new config by building its Plan; the stack applies a Plan only after every
check passed. Nothing here starts or signals a process.
"""

from __future__ import annotations

import contextlib
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
from supervisor.common.runas import RunAs, UnknownUser
from supervisor.common.trust import read_untrusted, read_untrusted_text
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
from supervisor.stack.trusted import trust_refusal
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
        return hashlib.sha256(read_untrusted(path)).hexdigest()
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
            return parse_ini(read_untrusted_text(path))
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
            try:
                return gunicorn_spec(self.gunicorn_settings(Holder()))
            except (OSError, UnicodeDecodeError) as exc:  # a missing conf, a planted link
                conf = self.config.gunicorn.conf
                why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
                raise StackError(f"{conf}: cannot read: {why or exc}") from None
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
        if isinstance(bound, str):  # for nginx's workers, not every local user
            return Spec(where, line, value, None, path=bound, mode=0o660)
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

    @cached_property
    def run_as(self) -> RunAs | None:
        """Who runs the app's code (masters, preflight, probes) when fnud is root: [fnud]
        user (and group); None when fnud is not root or no user is set (root_refusal
        says whether root may run it). An unknown user is a StackError, never "none"."""
        user, group = self.identity()
        if os.geteuid() != 0 or not user or self.config.balancer:
            return None
        try:
            return RunAs.resolve(user, group)
        except UnknownUser as exc:
            raise StackError(f"{self.config.path}: [fnud] user: {exc}") from None

    @property
    def owner(self) -> tuple[int, int] | None:
        """(uid, gid) of ``run_as``: the owner of what its processes write."""
        return self.run_as.owner if self.run_as is not None else None

    @property
    def runs_app_as_root(self) -> bool:
        """fnud is root and so is whoever runs the app (allow_root, or user = "root")."""
        if os.geteuid() != 0 or self.config.balancer:
            return False
        try:
            return self.run_as is None or self.run_as.uid == 0
        except StackError:
            return False  # refused anyway

    @property
    def nginx_files(self) -> tuple[str, ...]:
        return self.nginx_conf.files

    def app_binary(self) -> str:
        return self.gunicorn_python() if self.gunicorn else self.uwsgi_binary()

    def root_refusal(self) -> str:
        """Why fnud as root must not run this config ('' when it may): an unknown
        [fnud] user, the app as root without allow_root, a file root trusts that others
        may write."""
        try:
            self.run_as  # noqa: B018 (resolved here: refused, never "no user")
        except StackError as exc:
            return str(exc)
        return self._as_root_refusal() or trust_refusal(self)

    def _as_root_refusal(self) -> str:
        config = self.config
        fnud = config.fnud
        if os.geteuid() != 0 or fnud.user or fnud.allow_root or config.balancer:
            return ""  # (balancer mode runs no app; nginx's workers drop root themselves)
        uid = ""
        if not self.gunicorn:
            with contextlib.suppress(StackError):
                uid = self.ini.value("uid") or ""
        example = uid or "www-data"  # the ini's uid is the app's word, not root's
        return (
            f"refusing to run the app as root: set [fnud] user (e.g. \"{example}\") in "
            f"{config.path}, or [fnud] allow_root = true to run it as root anyway"
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
        return GunicornSettings(
            python=self.gunicorn_python(), app=section.app, chdir=section.chdir,
            bind=self.bind_spec(), workers=section.workers, threads=section.threads,
            conf=section.conf, paths=self.paths, environ=self.environ,
            log_path=self.app_log(), holder=holder, run_as=self.run_as,
        )

    def uwsgi_settings(self, holder: Holder) -> uwsgi_driver.UwsgiSettings:
        return uwsgi_driver.UwsgiSettings(
            binary=self.uwsgi_binary(), ini_path=self.config.uwsgi.ini, paths=self.paths,
            environ=self.environ, log_path=self.app_log(),
            holder=holder, run_as=self.run_as,
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
