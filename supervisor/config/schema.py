"""fnud.toml's shape: one frozen dataclass per section, the defaults beside each key.

The comment on a key's line is its documentation (docs/configuration.md's table is made
from it). Parsing and validation live in parse.py.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supervisor.common.ports import Address, parse_listen
from supervisor.config.servers import APP_SERVERS as APP_SERVERS  # (re-exported)
from supervisor.config.servers import DISPLAY
from supervisor.runtime.paths import Paths


@dataclass(frozen=True)
class FnudSection:
    runtime_dir: Path = Path("run")  # control socket, lock, master fifo, stats socket; created 0700
    log_dir: Path = Path("log")  # fnud.log (detached daemon), uwsgi.log or gunicorn.log, nginx.log
    stop_timeout: float = 20.0  # graceful stop budget before SIGKILL to the process groups
    start_timeout: float = 30.0  # how long a program may take to become ready
    user: str = ""  # as root: the user the app server (master and workers) runs as
    group: str = ""  # default: that user's primary group
    allow_root: bool = False  # as root with no user: refuse, unless true
    balancer: bool = False  # true: balancer mode, no app server: fnud runs nginx alone


@dataclass(frozen=True)
class UwsgiSection:
    enabled: bool = True  # false: the older spelling of [fnud] balancer = true
    ini: Path = Path("uwsgi.ini")  # your ini, unchanged
    binary: str = ""  # default: the uwsgi next to fnud's python, else PATH
    python: str = ""  # the app preflight's python (default: the ini's virtualenv, else fnud's)
    reload_timeout: float = 90.0  # a chain reload that takes longer fails, naming the stuck worker
    reload: str = "generation"  # "generation": a new uWSGI beside the old one; "chain": uWSGI's 'c'
    log_master: bool = False  # uWSGI's log through its master: `l` reopens it (README: cost)


@dataclass(frozen=True)
class GunicornSection:
    app: str = ""  # required: "module:callable" as gunicorn takes it ("app:app", "pkg:make_app()")
    chdir: Path = Path(".")  # the app's directory; a generation pins where a symlink in it points
    python: str = ""  # the app virtualenv's python: it runs `python -m gunicorn` (default: fnud's)
    bind: str = "127.0.0.1:8001"  # what proxy_pass reaches, held by fnud (or "unix:/path")
    workers: int = 0  # 0: as your conf says, else gunicorn's default (1)
    threads: int = 0  # more than 1: gthread workers; 0: as your conf says
    conf: Path | None = None  # your gunicorn.conf.py (optional), read as gunicorn reads it
    reload: str = "generation"  # the only mode: a new gunicorn master beside the old one


@dataclass(frozen=True)
class NginxSection:
    conf: Path = Path("nginx.conf")  # your nginx.conf, unchanged
    binary: str = "nginx"
    prefix: str = ""  # nginx -p; default <runtime_dir>-nginx (beside the private runtime dir)
    reload_timeout: float = 30.0


@dataclass(frozen=True)
class HealthSection:
    url: str = "http://127.0.0.1:8080/"  # a request through nginx that must answer 2xx/3xx
    timeout: float = 5.0
    interval: float = 10.0  # health probe period (0: no probe)
    failures: int = 3  # failed probes in a row before the culprit is restarted
    smoke: tuple[str, ...] = ()  # paths the preflight GETs from the app too (the url's path always)


@dataclass(frozen=True)
class ReloadSection:
    settle: float = 10.0  # seconds the previous generation stays warm for a rollback
    max_error_ratio: float = 0.05  # 5xx share during the settle that rolls back
    warm_preflight: bool = True  # the app check forks from a warm interpreter (false: cold)


@dataclass(frozen=True)
class BackoffSection:
    initial: float = 0.5  # first restart delay, doubled per quick failure ...
    max: float = 30.0  # ... up to this
    quick_failures: int = 5  # this many exits within quick_seconds of a start -> FATAL
    quick_seconds: float = 5.0
    cooldown: float = 300.0  # a FATAL program is tried again after this long (0: never)


@dataclass(frozen=True)
class WatchSection:
    enabled: bool = False  # true: every save goes through the gated reload
    paths: tuple[Path, ...] = ()  # default: the app's directory (the ini's or [gunicorn] chdir)
    include: tuple[str, ...] = ("*.py", "*.html", "*.jinja", "*.jinja2", "*.css", "*.js")
    exclude: tuple[str, ...] = (
        "__pycache__", ".git", "*.pyc", "*.swp", "*.swx", "*~", "4913", ".#*", "*.tmp",
    )
    debounce_ms: int = 100  # a burst of saves (git checkout of 200 files) makes one reload


@dataclass(frozen=True)
class MetricsSection:
    listen: str = ""  # e.g. "127.0.0.1:9300": Prometheus text on any GET
    #: ``listen`` parsed (None: off); not a key of its own
    address: Address | None = field(init=False, default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", parse_listen(self.listen))


@dataclass(frozen=True)
class WebSection:
    listen: str = ""  # "127.0.0.1:9301" serves the status page there; empty: off
    token: str = ""  # the Reload and Rollback buttons; needed to listen beyond loopback


@dataclass(frozen=True)
class Config:
    path: Path
    fnud: FnudSection = field(default_factory=FnudSection)
    uwsgi: UwsgiSection = field(default_factory=UwsgiSection)
    gunicorn: GunicornSection = field(default_factory=GunicornSection)
    nginx: NginxSection = field(default_factory=NginxSection)
    health: HealthSection = field(default_factory=HealthSection)
    reload: ReloadSection = field(default_factory=ReloadSection)
    backoff: BackoffSection = field(default_factory=BackoffSection)
    watch: WatchSection = field(default_factory=WatchSection)
    metrics: MetricsSection = field(default_factory=MetricsSection)
    web: WebSection = field(default_factory=WebSection)
    #: which app server's section fnud.toml has ("uwsgi" when neither: its defaults)
    server: str = "uwsgi"

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    @property
    def balancer(self) -> bool:
        """No app server: nginx alone ([fnud] balancer, or [uwsgi] enabled = false)."""
        return self.fnud.balancer or (self.server == "uwsgi" and not self.uwsgi.enabled)

    @property
    def app_server(self) -> str:
        """The app server fnud runs: "uwsgi", "gunicorn", or "" in balancer mode."""
        return "" if self.balancer else self.server

    @property
    def generation_reloads(self) -> bool:
        """Reloads are meant to start a new generation (gunicorn's only mode)."""
        return self.server == "gunicorn" or self.uwsgi.reload == "generation"

    @property
    def app_reload_timeout(self) -> float:
        """How long the app server's own reload of a running master may take."""
        return self.uwsgi.reload_timeout if self.server == "uwsgi" else self.fnud.start_timeout

    @property
    def app_config_files(self) -> tuple[Path, ...]:
        """The app server's own config files (a change reloads the app)."""
        if self.balancer:
            return ()
        if self.server == "gunicorn":
            return (self.gunicorn.conf,) if self.gunicorn.conf is not None else ()
        return (self.uwsgi.ini,)

    @property
    def server_display(self) -> str:
        return DISPLAY[self.server]

    @property
    def generation_key(self) -> str:
        """The setting that turns generation reloads on, for messages."""
        if self.server == "gunicorn":
            return '[gunicorn] reload = "generation"'
        return '[uwsgi] reload = "generation"'

    @property
    def paths(self) -> Paths:
        return Paths(self.fnud.runtime_dir, self.nginx_prefix, self.fnud.log_dir)

    @property
    def nginx_prefix(self) -> Path:
        """nginx -p: beside the runtime dir, not in it, because nginx's workers (another
        user when fnud runs as root) must reach their temp dirs; the runtime dir is 0700."""
        if not self.nginx.prefix:
            runtime = self.fnud.runtime_dir
            return runtime.with_name(runtime.name + "-nginx")
        prefix = Path(self.nginx.prefix)
        return Path(os.path.normpath(prefix if prefix.is_absolute() else self.base_dir / prefix))


SECTIONS: dict[str, type[Any]] = {
    "fnud": FnudSection,
    "uwsgi": UwsgiSection,
    "gunicorn": GunicornSection,
    "nginx": NginxSection,
    "health": HealthSection,
    "reload": ReloadSection,
    "backoff": BackoffSection,
    "watch": WatchSection,
    "metrics": MetricsSection,
    "web": WebSection,
}




def keys(section: type[Any]) -> tuple[dataclasses.Field[Any], ...]:
    """The fields of a section that are fnud.toml keys (not derived values)."""
    return tuple(f for f in dataclasses.fields(section) if f.init)
