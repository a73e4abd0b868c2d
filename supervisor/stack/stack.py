"""The two programs fnud supervises, built from one config."""

from __future__ import annotations

import contextlib
import grp
import hashlib
import json
import os
import pwd
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from supervisor.common.childenv import child_env
from supervisor.config.schema import Config
from supervisor.nginx import conf as nginx_adapter
from supervisor.process.events import Enqueue
from supervisor.process.program import Program
from supervisor.reload.preflight import AppSpec, app_spec
from supervisor.runtime.paths import Paths
from supervisor.runtime.release import Release
from supervisor.sockets import held as sockets
from supervisor.uwsgi import driver as uwsgi_adapter
from supervisor.uwsgi.ini import UwsgiIni, parse_ini


def identity(config: Config) -> tuple[str, str]:
    """(user, group) the workers run as when fnud is root; ('', '') to leave it be."""
    user = config.fnud.user
    return user, config.fnud.group or (primary_group(user) if user else "")


def primary_group(user: str) -> str:
    try:
        gid = pwd.getpwnam(user).pw_gid
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return ""


class StackError(Exception):
    """Something that keeps the stack from starting: one line for the user."""


def file_digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


@dataclass
class Stack:
    config: Config
    environ: Mapping[str, str]
    enqueue: Enqueue
    paths: Paths = field(init=False)
    uwsgi_driver: uwsgi_adapter.UwsgiDriver = field(init=False)  # the serving generation's
    nginx_driver: nginx_adapter.NginxDriver = field(init=False)
    uwsgi: Program = field(init=False)  # the serving generation
    nginx: Program = field(init=False)
    # uWSGI generations that are not the serving one: starting, warm (paused), retiring
    others: list[Program] = field(default_factory=list)
    # see each line of uWSGI's log once (generations share it; the serving one passes it on)
    uwsgi_lines: list[Callable[[str], None]] = field(default_factory=list)
    uwsgi_sockets: sockets.Holder = field(default_factory=sockets.Holder)
    nginx_sockets: sockets.Holder = field(default_factory=sockets.Holder)
    # what the running processes were started or last reloaded with
    ini_digest: str = ""
    nginx_digest: str = ""

    def __post_init__(self) -> None:
        self.paths = Paths.from_config(self.config)
        logs = self.config.fnud.log_dir
        self.nginx_driver = nginx_adapter.NginxDriver(
            self.nginx_binary(), self.config.nginx.conf, self.paths.nginx_prefix,
            child_env(self.environ), logs / "nginx.log", self.nginx_sockets,
        )
        self.nginx = Program(
            self.nginx_driver, self.enqueue, start_timeout=self.config.fnud.start_timeout,
            log_path=self.nginx_driver.log_path,
        )
        self.uwsgi = self.make_generation(1)
        self.uwsgi_driver = self.driver_of(self.uwsgi)
        self._apply_identity()

    # -- generations -----------------------------------------------------------------

    def make_generation(self, number: int) -> Program:
        """A uWSGI program for generation ``number``: its own fifo, stats socket and
        rendered ini, on the held sockets; pinned to its release in generation mode."""
        driver = uwsgi_adapter.UwsgiDriver(
            self.uwsgi_binary(), self.config.uwsgi.ini, self.paths, self.environ,
            self.config.fnud.log_dir / "uwsgi.log", number, self.uwsgi_sockets,
        )
        driver.pinned = self.generation_mode()
        driver.user, driver.group = identity(self.config)
        driver.owner = self.owner()
        driver.log_master = self.config.uwsgi.log_master
        prog = Program(
            driver, self.enqueue, start_timeout=self.config.fnud.start_timeout,
            log_path=driver.log_path,
        )

        def serving_line(line: str) -> None:
            if prog.echo:
                for observe in self.uwsgi_lines:
                    observe(line)

        prog.observers.append(serving_line)
        return prog

    def generation_mode(self, config: Config | None = None) -> bool:
        """Reloads start a new generation: configured so, and every socket can be held."""
        config = config or self.config
        if config.uwsgi.reload != "generation":
            return False
        try:
            ini = self.read_ini(config)
        except StackError:
            return False
        specs = self.uwsgi_specs(config)
        return bool(specs) and not sockets.unholdable(ini, str(config.uwsgi.ini))

    @staticmethod
    def driver_of(prog: Program) -> uwsgi_adapter.UwsgiDriver:
        driver = prog.driver
        assert isinstance(driver, uwsgi_adapter.UwsgiDriver)
        return driver

    @property
    def generation(self) -> int:
        return self.uwsgi_driver.generation

    def promote(self, prog: Program) -> Program:
        """Make ``prog`` the serving generation; return the one it replaces (which joins
        ``others`` and stops following the shared log)."""
        old = self.uwsgi
        if prog in self.others:
            self.others.remove(prog)
        self.others.append(old)
        self.uwsgi, self.uwsgi_driver = prog, self.driver_of(prog)
        old.echo, prog.echo = False, True
        return old

    def release_dir(self) -> str:
        """Where the app's directory resolves now (through any symlink)."""
        return uwsgi_adapter.release_dir(self.read_ini(), self.config.uwsgi.ini)

    def hold_sockets(self, adopted: set[str]) -> None:
        """Bind every socket the programs will inherit (raises sockets.SocketError);
        adopted programs keep what they have (recovered or their own)."""
        if "uwsgi" not in adopted and self.config.uwsgi.enabled:
            self.uwsgi_driver.sockets(self.read_ini())
        if "nginx" not in adopted:
            self.nginx_driver.sockets(self.nginx_conf())

    def held_fds(self) -> dict[str, int]:
        """{program/address: fd} of every held socket (systemd's fd store keeps them)."""
        out = {f"uwsgi/{k}": fd for k, fd in self.uwsgi_sockets.fds().items()}
        out.update({f"nginx/{k}": fd for k, fd in self.nginx_sockets.fds().items()})
        return out

    def inherit(self, named: dict[str, int]) -> None:
        """Sockets systemd kept for us (``held_fds`` names) wait to be taken by address."""
        for name, fd in named.items():
            program, _, key = name.partition("/")
            holder = {"uwsgi": self.uwsgi_sockets, "nginx": self.nginx_sockets}.get(program)
            if holder is not None and key:
                holder.inherited[key] = socket.socket(fileno=fd)

    def resync_nginx_sockets(self) -> None:
        """Listens an nginx reload added are taken from its master (held from now on);
        removed ones are let go."""
        if not self.nginx.running:
            return
        specs = self.nginx_driver.specs(self.nginx_conf())
        missed = sockets.resync(self.nginx_sockets, self.nginx.pid, specs)
        if missed:
            self.nginx.log.warning("listens not held (nginx binds them itself)", missed=missed)

    def uwsgi_specs(self, config: Config | None = None) -> list[sockets.Spec]:
        config = config or self.config
        return sockets.uwsgi_specs(
            self.read_ini(config), str(config.uwsgi.ini),
            lambda v: uwsgi_adapter.expand_magic(v, config.uwsgi.ini),
        )

    def renumber(self, generation: int) -> None:
        """The serving generation is number ``generation`` (adopted after a restart)."""
        self.uwsgi = self.make_generation(generation)
        self.uwsgi_driver = self.driver_of(self.uwsgi)

    def forget(self, prog: Program) -> None:
        if prog in self.others:
            self.others.remove(prog)

    def program_for(self, name: str, pid: int) -> Program:
        """The program an event's PID belongs to (the serving one when none matches)."""
        if name == "nginx":
            return self.nginx
        for prog in self.others:
            if prog.pid == pid:
                return prog
        return self.uwsgi

    def _apply_identity(self) -> None:
        for driver in (self.uwsgi_driver, self.nginx_driver):
            driver.user, driver.group = identity(self.config)
        self.uwsgi_driver.owner = self.owner()
        self.uwsgi_driver.pinned = self.generation_mode()
        self.uwsgi_driver.log_master = self.config.uwsgi.log_master

    def owner(self, config: Config | None = None) -> tuple[int, int] | None:
        """(uid, gid) the workers run as when fnud is root: [fnud] user/group, else the
        ini's uid/gid; None when not root or neither is set (or the user is unknown)."""
        if os.geteuid() != 0:
            return None
        config = config or self.config
        user, group = identity(config)
        if not user:
            try:
                ini = self.read_ini(config)
            except StackError:
                return None
            user, group = ini.value("uid") or "", ini.value("gid") or ""
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

    def root_refusal(self, config: Config | None = None) -> str:
        """Why fnud must not start the app as root ('' when it may)."""
        config = config or self.config
        fnud = config.fnud
        if os.geteuid() != 0 or fnud.user or fnud.allow_root or not config.uwsgi.enabled:
            return ""  # (balancer mode runs no app; nginx's workers drop root themselves)
        if self.read_ini(config).value("uid"):
            return ""
        return (
            f"refusing to run the app as root: set [fnud] user (e.g. \"www-data\") in "
            f"{config.path} or uid in {config.uwsgi.ini}, "
            "or [fnud] allow_root = true to run it as root anyway"
        )

    @property
    def programs(self) -> dict[str, Program]:
        if not self.config.uwsgi.enabled:  # balancer mode: nginx alone
            return {"nginx": self.nginx}
        return {"uwsgi": self.uwsgi, "nginx": self.nginx}

    def uwsgi_binary(self, config: Config | None = None) -> str:
        configured = (config or self.config).uwsgi.binary
        return uwsgi_adapter.find_binary(configured) or configured or "uwsgi"

    def nginx_binary(self, config: Config | None = None) -> str:
        configured = (config or self.config).nginx.binary
        return nginx_adapter.find_binary(configured) or configured

    def apply(self, config: Config) -> None:
        """Take a re-read config (after it passed every check): paths and binaries of
        later spawns and reloads."""
        self.config = config
        self.uwsgi_driver.binary = self.uwsgi_binary()
        self.uwsgi_driver.ini_path = config.uwsgi.ini
        self.nginx_driver.binary = self.nginx_binary()
        self.nginx_driver.conf_path = config.nginx.conf
        self._apply_identity()
        timeout = config.fnud.start_timeout
        self.uwsgi.start_timeout = self.nginx.start_timeout = timeout

    def read_ini(self, config: Config | None = None) -> UwsgiIni:
        path = (config or self.config).uwsgi.ini
        try:
            return parse_ini(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise StackError(f"{path}: cannot read: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise StackError(
                f"{path}: not UTF-8 text (byte {exc.start}): save it as UTF-8"
            ) from None

    def app(self, config: Config | None = None) -> AppSpec:
        config = config or self.config
        return app_spec(self.read_ini(config), config.uwsgi.ini, config.uwsgi.python)

    def nginx_conf(self, config: Config | None = None) -> nginx_adapter.NginxConf:
        return nginx_adapter.analyze((config or self.config).nginx.conf)

    def touch_files(self) -> list[Path]:
        if not self.config.uwsgi.enabled:
            return []
        ini = self.read_ini()
        spec = self.app()
        return uwsgi_adapter.touch_files(ini, self.config.uwsgi.ini, Path(spec.chdir))

    def current_ini_digest(self) -> str:
        return file_digest(self.config.uwsgi.ini)

    def current_nginx_digest(self) -> str:
        return nginx_adapter.fingerprint(self.nginx_conf())

    def save_state(self) -> None:
        """Record the running PIDs so that a restarted daemon can adopt them."""
        state = {
            name: {"pid": prog.pid, "started": prog.spawned_wall}
            for name, prog in self.programs.items()
            if prog.running
        }
        data = {
            **state, "ini_digest": self.ini_digest, "nginx_digest": self.nginx_digest,
            "generation": self.generation, "release": self._release(),
            "sockets": {"uwsgi": self.uwsgi_sockets.fds(), "nginx": self.nginx_sockets.fds()},
        }
        tmp = self.paths.state.with_suffix(".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, self.paths.state)

    def _release(self) -> dict[str, object] | None:
        """The serving generation's pinned source, for a daemon that adopts it."""
        driver = self.uwsgi_driver
        if driver.source is None:
            return None
        return Release(driver.generation, driver.release, driver.source, driver.link).to_dict()

    def restore_release(self, data: object) -> None:
        """What :meth:`_release` saved, back on the adopted generation's driver."""
        release = Release.from_dict(data)
        if release is not None:
            driver = self.uwsgi_driver
            driver.source, driver.link, driver.release = (
                release.source, release.link, release.directory
            )

    def clear_state(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.paths.state.unlink()

    def check_binaries(self, config: Config | None = None) -> None:
        config = config or self.config
        if config.uwsgi.enabled and not os.access(self.uwsgi_binary(config), os.X_OK):
            raise StackError(
                f"uwsgi binary not found ({config.uwsgi.binary or 'uwsgi'}): "
                "pip install uwsgi, or set [uwsgi] binary"
            )
        if not os.access(self.nginx_binary(config), os.X_OK):
            raise StackError(
                f"nginx binary not found ({config.nginx.binary}): "
                "apt-get install nginx-light, or set [nginx] binary"
            )
