"""nginx adapter: every flag, signal and config fact fnud relies on lives in this package.

fnud runs the master in the foreground as its child:
``nginx -p PREFIX/ -c CONF -e LOG -g 'daemon off; [pid PREFIX/nginx.pid;]'``
and signals it directly (it is our child, so no pid-file race).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import stat
from dataclasses import dataclass
from pathlib import Path

from supervisor.nginx.conf import NginxConf, analyze, worker_user
from supervisor.nginx.sockets import nginx_specs
from supervisor.process.group import child_pids
from supervisor.process.spawn import Command
from supervisor.sockets.held import Held, Holder, Spec

RELOAD = signal.SIGHUP
GRACEFUL_STOP = signal.SIGQUIT
REOPEN_LOGS = signal.SIGUSR1
INHERITED_SOCKETS = "NGINX"  # "3;4;": listening sockets nginx takes instead of binding

TEMP_DIRS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def find_binary(configured: str) -> str | None:
    """nginx on PATH, or in /usr/sbin (not on a normal user's PATH on Debian)."""
    return shutil.which(configured) or shutil.which(configured, path="/usr/sbin:/sbin")


def global_directives(prefix: Path, conf: NginxConf, user: str = "", group: str = "") -> str:
    parts = ["daemon off;"]
    if user and os.geteuid() == 0 and not conf.named("user"):
        parts.append(f"user {user} {group};" if group else f"user {user};")
    # when the conf does not parse, leave pid alone: nginx -t then names the real error
    # instead of a "pid directive is duplicate" that our own -g would cause
    if conf.main_pid is None and not conf.errors:
        parts.append(f"pid {prefix / 'nginx.pid'};")
    return " ".join(parts)


def argv(
    binary: str,
    prefix: Path,
    conf_path: Path,
    conf: NginxConf,
    error_log: str = "stderr",
    user: str = "",
    group: str = "",
) -> list[str]:
    """``error_log``: nginx's log until (and unless) the conf names its own; as a file,
    nginx reopens it on USR1."""
    return [
        binary,
        "-p", f"{prefix}/",
        "-c", str(conf_path),
        "-e", error_log,
        "-g", global_directives(prefix, conf, user, group),
    ]


def prepare_prefix(prefix: Path, worker_uid: int | None = None) -> None:
    """Directories nginx writes to under its prefix (temp paths in our example conf).

    As root, nginx's workers run as another user: the temp dirs are theirs (0700).
    """
    prefix.mkdir(parents=True, exist_ok=True)
    # nginx's workers must traverse it; never take a bit away (a prefix of /tmp stays 1777)
    os.chmod(prefix, stat.S_IMODE(prefix.stat().st_mode) | 0o755)
    for sub in ("logs", "tmp", *(f"tmp/{name}" for name in TEMP_DIRS)):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    if worker_uid is not None and os.geteuid() == 0:
        for name in TEMP_DIRS:
            os.chown(prefix / "tmp" / name, worker_uid, -1)
            os.chmod(prefix / "tmp" / name, 0o700)


def worker_uid(conf: NginxConf, configured: str) -> int | None:
    try:
        return pwd.getpwnam(worker_user(conf, configured)).pw_uid
    except KeyError:
        return None


def worker_pids(master_pid: int) -> set[int]:
    """PIDs of the master's worker children (cache manager/loader included)."""
    return child_pids(master_pid)


@dataclass(frozen=True)
class NginxSettings:
    binary: str
    conf_path: Path
    prefix: Path  # nginx -p
    env: dict[str, str]  # scrubbed
    log_path: Path  # nginx's error log until (and unless) the conf names its own
    holder: Holder | None = None  # the held listens (None: nginx binds its own)
    user: str = ""  # [fnud] user/group, applied as root when the conf names none
    group: str = ""


class NginxDriver:
    """Runs nginx's master in the foreground under fnud."""

    name = "nginx"
    orphan_signal: int | None = GRACEFUL_STOP
    orphan_grace = 2.0

    def __init__(self, settings: NginxSettings) -> None:
        self.settings = settings
        self.log_path = settings.log_path

    def command(self) -> Command:
        s = self.settings
        conf = analyze(s.conf_path)
        prepare_prefix(s.prefix, worker_uid(conf, s.user))
        held = self.sockets(conf)
        env = dict(s.env)
        if held:  # nginx's binary-upgrade variable: it takes these instead of binding
            env[INHERITED_SOCKETS] = "".join(f"{h.fd};" for h in held)
        return Command(
            argv=argv(s.binary, s.prefix, s.conf_path, conf, str(s.log_path), s.user, s.group),
            cwd=str(s.conf_path.parent),
            env=env,
            pass_fds=tuple(h.fd for h in held),
        )

    @staticmethod
    def specs(conf: NginxConf) -> list[Spec]:
        return nginx_specs((d.file, d.line, d.args) for d in conf.named("listen"))

    def sockets(self, conf: NginxConf) -> list[Held]:
        """Hold the conf's inet listens (binding new ones, closing removed ones)."""
        holder = self.settings.holder
        if holder is None:
            return []
        specs = self.specs(conf)
        holder.keep_only(spec.key for spec in specs)
        return holder.ensure(specs)

    def holds_sockets(self) -> bool:
        """Every listen is one fnud holds already (not one nginx bound on a reload)."""
        holder = self.settings.holder
        if holder is None:
            return False
        conf = analyze(self.settings.conf_path)
        specs = self.specs(conf)
        return len(specs) == len(conf.named("listen")) and all(
            s.key in holder.held for s in specs
        )

    async def not_ready_reason(self, pid: int) -> str | None:
        return None if worker_pids(pid) else "waiting for nginx workers"

    async def reopen_logs(self, pid: int) -> None:
        os.kill(pid, REOPEN_LOGS)

    async def request_stop(self, pid: int) -> None:
        os.kill(pid, GRACEFUL_STOP)

    def log_level(self, line: str) -> str:
        return "info"
