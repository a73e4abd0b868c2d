"""The two programs fnud supervises, built from one config."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from supervisor import nginx as nginx_adapter
from supervisor import uwsgi as uwsgi_adapter
from supervisor.config import Config
from supervisor.ini import UwsgiIni, parse_ini
from supervisor.preflight import AppSpec, app_spec
from supervisor.program import Enqueue, Program
from supervisor.runtime import Paths


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
    uwsgi_driver: uwsgi_adapter.UwsgiDriver = field(init=False)
    nginx_driver: nginx_adapter.NginxDriver = field(init=False)
    uwsgi: Program = field(init=False)
    nginx: Program = field(init=False)
    # what the running processes were started or last reloaded with
    ini_digest: str = ""
    nginx_digest: str = ""

    def __post_init__(self) -> None:
        self.paths = Paths.from_config(self.config)
        self.uwsgi_driver = uwsgi_adapter.UwsgiDriver(
            self.uwsgi_binary(), self.config.uwsgi.ini, self.paths.root, self.environ
        )
        self.nginx_driver = nginx_adapter.NginxDriver(
            self.nginx_binary(), self.config.nginx.conf, self.paths.nginx_prefix,
            uwsgi_adapter.child_env(self.environ),
        )
        timeout = self.config.fnud.start_timeout
        self.uwsgi = Program(self.uwsgi_driver, self.enqueue, start_timeout=timeout)
        self.nginx = Program(self.nginx_driver, self.enqueue, start_timeout=timeout)

    @property
    def programs(self) -> dict[str, Program]:
        return {"uwsgi": self.uwsgi, "nginx": self.nginx}

    def uwsgi_binary(self) -> str:
        configured = self.config.uwsgi.binary
        return uwsgi_adapter.find_binary(configured) or configured or "uwsgi"

    def nginx_binary(self) -> str:
        return nginx_adapter.find_binary(self.config.nginx.binary) or self.config.nginx.binary

    def apply(self, config: Config) -> None:
        """Take a re-read config: paths and binaries of later spawns and reloads."""
        self.config = config
        self.uwsgi_driver.binary = self.uwsgi_binary()
        self.uwsgi_driver.ini_path = config.uwsgi.ini
        self.nginx_driver.binary = self.nginx_binary()
        self.nginx_driver.conf_path = config.nginx.conf

    def read_ini(self) -> UwsgiIni:
        try:
            return parse_ini(self.config.uwsgi.ini.read_text(encoding="utf-8"))
        except OSError as exc:
            raise StackError(f"{self.config.uwsgi.ini}: cannot read: {exc.strerror}") from None

    def app(self) -> AppSpec:
        return app_spec(self.read_ini(), self.config.uwsgi.ini, self.config.uwsgi.python)

    def touch_files(self) -> list[Path]:
        ini = self.read_ini()
        spec = self.app()
        return uwsgi_adapter.touch_files(ini, self.config.uwsgi.ini, Path(spec.chdir))

    def nginx_conf(self) -> nginx_adapter.NginxConf:
        return nginx_adapter.analyze(self.config.nginx.conf)

    def current_ini_digest(self) -> str:
        return file_digest(self.config.uwsgi.ini)

    def current_nginx_digest(self) -> str:
        return nginx_adapter.fingerprint(self.nginx_conf())

    def check_binaries(self) -> None:
        if not os.access(self.uwsgi_binary(), os.X_OK):
            raise StackError(
                f"uwsgi binary not found ({self.config.uwsgi.binary or 'uwsgi'}): "
                "pip install uwsgi, or set [uwsgi] binary"
            )
        if not os.access(self.nginx_binary(), os.X_OK):
            raise StackError(
                f"nginx binary not found ({self.config.nginx.binary}): "
                "apt-get install nginx-light, or set [nginx] binary"
            )
