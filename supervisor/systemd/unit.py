"""The systemd unit for fnud: one template, filled in for a config and an installation.

``fnud -c FILE systemd-unit`` prints ``render(config, fnud_executable())`` (like
``pm2 startup``). The repository's ``systemd/fnud.service`` is the same template rendered
for the documented install layout (``shipped()``); regenerate it with
``python -m supervisor.systemd.unit > systemd/fnud.service`` -- a test keeps the two equal.

No I/O here beyond looking up the user name of ``euid`` and whether ``fnud`` names an
existing file: the config says which directories fnud writes, and the unit is derived
from that.
"""

from __future__ import annotations

import grp
import math
import os
import pwd
import re
import shlex
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from supervisor.config.parse import parse_config
from supervisor.config.schema import Config

#: the install layout systemd/fnud.service is rendered for
SHIPPED_FNUD = "/usr/local/bin/fnud"
SHIPPED_CONFIG = Path("/etc/fnud/fnud.toml")
SHIPPED_RUNTIME_DIR = Path("/run/fnud")
SHIPPED_LOG_DIR = Path("/var/log/fnud")

#: seconds systemd allows on top of fnud's own deadlines before it kills
STOP_MARGIN = 25.0

_RUN = PurePosixPath("/run")
_LOGS = PurePosixPath("/var/log")
_NOT_RUNTIME = (PurePosixPath("/run/user"),)  # per-user runtime dirs (ProtectHome covers them)
_TMP = (PurePosixPath("/tmp"), PurePosixPath("/var/tmp"))
_SAFE_WORD = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")

TEMPLATE = """\
# fnud.service: the Flask -> {server} -> nginx stack as one systemd service.
#
# Made by `fnud -c {config} systemd-unit` for that config and the fnud
# at {fnud}. Install it, start it now and at every boot:
#   sudo fnud -c {config} systemd-unit --install
#   sudo systemctl daemon-reload && sudo systemctl enable --now fnud
# Then `systemctl reload fnud` (the gated reload), `journalctl -u fnud -f` (the logs).
#
# Paths (edit fnud.toml and run `fnud systemd-unit` again rather than this file):
#   {fnud}
#       fnud's console script (installed in a virtualenv such as /opt/fnud, it is
#       /opt/fnud/bin/fnud; /usr/local/bin/fnud when linked there)
#   {config}
#       the config; relative paths in it are relative to its directory
#   {runtime_dir}
#       [fnud] runtime_dir: control socket, lock, {server}'s own files (0700).
#       The nginx prefix (pid file, temp dirs) is beside it, <runtime_dir>-nginx, unless
#       [nginx] prefix says otherwise: nginx's workers must reach their temp dirs.
#       RuntimeDirectory= below creates both; fnud opens the nginx one to 0755.
#   {log_dir}
#       [fnud] log_dir: {server_log} and nginx.log, the programs' output (fnud also passes
#       it on to its own log, the journal). /var/log/fnud is created by LogsDirectory=.

[Unit]
Description=fnud: Flask app behind {server} and nginx
After=network-online.target
Wants=network-online.target

[Service]
# fnud sends READY=1 once a request through nginx succeeds, RELOADING=1/READY=1 around each
# reload and STOPPING=1 when it stops. Only the main process (fnud) may notify: nginx and
# {server} never see $NOTIFY_SOCKET.
Type=notify
NotifyAccess=main
ExecStart={exec_start}
# Synchronous: returns once the reload is done. A refused reload (broken app, nginx -t
# failure) exits 1, so `systemctl reload` fails loudly while the old processes keep serving.
# (Type=notify-reload would need systemd 253.)
ExecReload={exec_reload}
WorkingDirectory={working_directory}
# Covers the start ({server}, nginx, health check: 3 x [fnud] start_timeout) and also each
# ExecReload ({server}'s and nginx's reload timeouts, nginx -t and the app import).
TimeoutStartSec={timeout_start}
# SIGTERM goes to fnud alone: it stops nginx, then {server}, gracefully within [fnud]
# stop_timeout ({stop_timeout}s) and SIGKILLs their process groups after that. Whatever is
# still in the service's cgroup when fnud exits, or after TimeoutStopSec (kept above
# stop_timeout), gets SIGKILL from systemd.
KillMode=mixed
TimeoutStopSec={timeout_stop}
Restart=on-failure
RestartSec=2
# fnud keeps its listening sockets here too: after a restart (KillMode ends the stack
# with the daemon) it starts the stack on the same sockets, so clients wait, not fail
FileDescriptorStoreMax=64
# nginx keeps two descriptors per proxied connection
LimitNOFILE=65536

# Who runs the stack. Without User= (root), fnud and nginx's master run as root; nginx's
# workers drop to nginx `user`, {server} runs as [fnud] user from its start. With a
# non-root User=, that user must be able to read the app and the configs; for ports below
# 1024 (80, 443) it also needs AmbientCapabilities=CAP_NET_BIND_SERVICE, which nginx
# inherits.
{user_block}

# Directories fnud writes (from fnud.toml). nginx and {server} write what your nginx.conf and
# {server_conf} say (access/error logs, sockets, pid files): with ProtectSystem=strict, or
# anything under /etc or a home directory, list those in ReadWritePaths= too.
{dirs_block}

# Hardening that leaves the stack working. Not here on purpose: PrivateNetwork= (nginx must
# listen on the host's network), PrivateUsers= (breaks binding host ports and the root ->
# worker user switch), MemoryDenyWriteExecute= (breaks ctypes/cffi callbacks in many Python
# packages), ProtectSystem=strict (read-only everywhere but ReadWritePaths=: add what your
# app, nginx and {server} write first).
NoNewPrivileges=yes
{private_tmp_block}
PrivateDevices=yes
ProtectSystem=full
ProtectHome=read-only
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectHostname=yes
ProtectClock=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native

[Install]
WantedBy=multi-user.target
"""


def render(config: Config, fnud: str, *, euid: int | None = None) -> str:
    """The unit for ``config``, started with ``fnud`` (a path, or a command line).

    ``euid`` is whose unit this is (default: the current effective user): a non-root user
    gets ``User=``/``Group=``, root gets them commented out.
    """
    config_file = _absolute(config.path)
    fnud_argv = [fnud] if os.path.exists(fnud) else shlex.split(fnud)
    common = [*fnud_argv, "-c", str(config_file)]
    fields = {
        "config": _comment(str(config_file)),
        "fnud": _comment(fnud),
        "runtime_dir": _comment(str(_absolute(config.fnud.runtime_dir))),
        "log_dir": _comment(str(_absolute(config.fnud.log_dir))),
        "exec_start": _command([*common, "start", "--foreground"]),
        "exec_reload": _command([*common, "reload"]),
        "working_directory": _escape(str(config_file.parent)),
        "timeout_start": _seconds(start_budget(config)),
        "stop_timeout": f"{config.fnud.stop_timeout:g}",
        "timeout_stop": _seconds(config.fnud.stop_timeout + STOP_MARGIN),
        "user_block": _user_block(config, os.geteuid() if euid is None else euid),
        "dirs_block": _dirs_block(config),
        "private_tmp_block": _private_tmp_block(config),
        **_server_words(config),
    }
    return TEMPLATE.format(**fields)


def start_budget(config: Config) -> float:
    """What TimeoutStartSec must cover: the start, and each ExecReload."""
    start = 3 * config.fnud.start_timeout + 30
    reload = config.app_reload_timeout + config.nginx.reload_timeout + 60
    return max(start, reload)


def shipped_config() -> Config:
    """The documented install layout systemd/fnud.service is rendered for."""
    text = f'[fnud]\nruntime_dir = "{SHIPPED_RUNTIME_DIR}"\nlog_dir = "{SHIPPED_LOG_DIR}"\n'
    return parse_config(text, SHIPPED_CONFIG)


def shipped() -> str:
    """The text of systemd/fnud.service (rendered as root, so no User=)."""
    return render(shipped_config(), SHIPPED_FNUD, euid=0)


# -- the parts that depend on the config ---------------------------------------------


def _server_words(config: Config) -> dict[str, str]:
    """How the comments name the app server, its log, its config, its workers' user."""
    files = config.app_config_files
    return {
        "server": config.server_display,
        "server_log": f"{config.server}.log",
        "server_conf": files[0].name if files else "fnud.toml",
    }


def _user_block(config: Config, euid: int) -> str:
    try:
        port = urlsplit(config.health.url).port or 80
    except ValueError:
        port = 80
    if euid == 0:
        return "\n".join([
            "#User=www-data",
            "#Group=www-data",
            "#AmbientCapabilities=CAP_NET_BIND_SERVICE",
        ])
    try:
        entry = pwd.getpwuid(euid)
    except KeyError:  # not in the passwd database: systemd takes a numeric UID too
        lines = [f"User={euid}"]
    else:
        try:
            group = grp.getgrgid(entry.pw_gid).gr_name
        except KeyError:
            group = str(entry.pw_gid)
        lines = [f"User={entry.pw_name}", f"Group={group}"]
    caps = "AmbientCapabilities=CAP_NET_BIND_SERVICE"
    if port < 1024:
        lines += [f"# [health] url is on port {port}", caps]
    else:
        lines.append(f"#{caps}")
    return "\n".join(lines)


def _dirs_block(config: Config) -> str:
    runtime = _absolute(config.fnud.runtime_dir)
    logs = _absolute(config.fnud.log_dir)
    prefix = _absolute(config.nginx_prefix)
    runtime_names: list[str] = []
    logs_names: list[str] = []
    writable: list[Path] = []
    for path in _outermost([runtime, prefix, logs]):
        if name := _runtime_name(path):
            runtime_names.append(name)
        elif name := _logs_name(path):
            logs_names.append(name)
        else:
            writable.append(path)
    lines: list[str] = []
    if runtime_names:
        lines += [
            f"RuntimeDirectory={_words(runtime_names)}",
            "RuntimeDirectoryMode=0700",
        ]
    else:
        lines += [
            '# runtime_dir is not under /run; with runtime_dir = "/run/fnud" in fnud.toml:',
            "#RuntimeDirectory=fnud",
            "#RuntimeDirectoryMode=0700",
        ]
    if logs_names:
        lines.append(f"LogsDirectory={_words(logs_names)}")
    else:
        lines += [
            '# log_dir is not under /var/log; with log_dir = "/var/log/fnud" in fnud.toml:',
            "#LogsDirectory=fnud",
        ]
    if writable:
        lines.append("# '-': skipped when missing (then fnud reports the read-only path)")
        lines += [f"ReadWritePaths={_word('-' + str(path))}" for path in writable]
    else:
        lines.append("#ReadWritePaths=/var/lib/myapp")
    return "\n".join(lines)


def _private_tmp_block(config: Config) -> str:
    paths = [
        config.path, *config.app_config_files, config.nginx.conf,
        config.fnud.runtime_dir, config.fnud.log_dir, config.nginx_prefix,
    ]
    in_tmp = [p for p in (_absolute(p) for p in paths) if _under(p, _TMP)]
    if in_tmp:
        return "\n".join([
            f"# not PrivateTmp=yes: fnud's files are in {_comment(str(in_tmp[0]))}, and a private",
            "# /tmp would hide them from the service (and its socket from `fnud status`)",
            "PrivateTmp=no",
        ])
    return "PrivateTmp=yes"


def _runtime_name(path: Path) -> str:
    posix = PurePosixPath(path)
    if posix == _RUN or not posix.is_relative_to(_RUN) or _under(path, _NOT_RUNTIME):
        return ""
    return str(posix.relative_to(_RUN))


def _logs_name(path: Path) -> str:
    posix = PurePosixPath(path)
    if posix == _LOGS or not posix.is_relative_to(_LOGS):
        return ""
    return str(posix.relative_to(_LOGS))


def _outermost(paths: Iterable[Path]) -> list[Path]:
    """Drop duplicates and paths inside another one of ``paths``, keeping the order."""
    unique = list(dict.fromkeys(paths))
    return [
        p for p in unique
        if not any(other != p and p.is_relative_to(other) for other in unique)
    ]


def _under(path: Path, roots: Iterable[PurePosixPath]) -> bool:
    return any(PurePosixPath(path).is_relative_to(root) for root in roots)


# -- unit file syntax ------------------------------------------------------------------


def _absolute(path: Path) -> Path:
    return Path(os.path.abspath(path))


def _seconds(value: float) -> str:
    return str(math.ceil(value))


def _escape(value: str) -> str:
    """A single-valued setting: only specifiers ('%') are special."""
    return value.replace("%", "%%")


def _word(word: str) -> str:
    """One word of a command line or a list setting, quoted when it has to be."""
    if _SAFE_WORD.fullmatch(word):
        return _escape(word)
    quoted = (
        word.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    )
    return '"' + _escape(quoted) + '"'


def _words(words: Iterable[str]) -> str:
    return " ".join(_word(w) for w in words)


def _command(argv: list[str]) -> str:
    """ExecStart=/ExecReload= syntax: also '$' would expand an environment variable."""
    return " ".join(_word(w).replace("$", "$$") for w in argv)


def _comment(text: str) -> str:
    return text.replace("\n", " ")


if __name__ == "__main__":  # pragma: no cover - regenerates systemd/fnud.service
    print(shipped(), end="")
