"""nginx adapter: every flag, signal and config fact fnud relies on lives here.

fnud runs the master in the foreground as its child:
``nginx -p PREFIX/ -c CONF -e stderr -g 'daemon off; [pid PREFIX/nginx.pid;]'``
and signals it directly (it is our child, so no pid-file race).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import pwd
import re
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import crossplane

from supervisor.process.program import Command, child_pids
from supervisor.sockets.held import Held, Holder, Spec, nginx_specs

RELOAD = signal.SIGHUP
GRACEFUL_STOP = signal.SIGQUIT
REOPEN_LOGS = signal.SIGUSR1
INHERITED_SOCKETS = "NGINX"  # "3;4;": listening sockets nginx takes instead of binding

TEMP_DIRS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


@dataclass(frozen=True)
class Message:
    """One problem found in the configuration: where (``line`` 0: the file as a whole),
    what, and nginx's level (``emerg``, ``warn``...; "" when nginx gave none)."""

    file: str
    line: int
    text: str
    level: str = "emerg"

    @property
    def is_error(self) -> bool:
        return self.level in ERROR_LEVELS


ERROR_LEVELS = frozenset({"emerg", "alert", "crit", "error"})


@dataclass(frozen=True)
class Directive:
    name: str
    args: tuple[str, ...]
    file: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class NginxConf:
    """What fnud needs to know about a parsed nginx.conf (with its includes)."""

    files: tuple[str, ...]
    directives: tuple[Directive, ...]
    errors: tuple[Message, ...]  # what crossplane could not parse

    def named(self, *names: str) -> list[Directive]:
        return [d for d in self.directives if d.name in names]

    @property
    def main_pid(self) -> Directive | None:
        found = [d for d in self.named("pid") if d.file == self.files[0]]
        return found[0] if found else None


def _walk(block: list[dict[str, Any]], file: str, out: list[Directive]) -> None:
    for item in block:
        out.append(
            Directive(item["directive"], tuple(item.get("args", [])), file, int(item["line"]))
        )
        if "block" in item:
            _walk(item["block"], file, out)


_ERRNO_RE = re.compile(r"^\[Errno \d+\] (?P<reason>.*?): '(?P<path>.*)'$")


def _crossplane_error(file: str, error: dict[str, Any]) -> Message:
    line = int(error.get("line") or 1)
    text = str(error.get("error")).removesuffix(f" in {file}:{line}")
    match = _ERRNO_RE.match(text)
    if match:  # an include that cannot be read
        text = f"cannot open {match.group('path')}: {match.group('reason')}"
    return Message(file, line, text)


def analyze(conf: Path) -> NginxConf:
    """Parse nginx.conf and its includes with crossplane (never raises for bad syntax)."""
    payload = crossplane.parse(str(conf), catch_errors=True, comments=False)
    files: list[str] = []
    directives: list[Directive] = []
    errors = []
    for entry in payload.get("config", []):
        files.append(entry["file"])
        _walk(entry.get("parsed", []), entry["file"], directives)
        errors += [_crossplane_error(entry["file"], err) for err in entry.get("errors", [])]
    return NginxConf(tuple(files) or (str(conf),), tuple(directives), tuple(errors))


def fingerprint(conf: NginxConf) -> str:
    """Hash of every file of the configuration: decides whether nginx needs a reload."""
    digest = hashlib.sha256()
    for name in conf.files:
        digest.update(name.encode())
        try:
            digest.update(Path(name).read_bytes())
        except OSError:
            digest.update(b"<unreadable>")
    return digest.hexdigest()


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


def test_argv(
    binary: str, prefix: Path, conf_path: Path, conf: NginxConf, user: str = "", group: str = ""
) -> list[str]:
    """``nginx -t`` with exactly the flags fnud runs nginx with (errors to stderr)."""
    return [*argv(binary, prefix, conf_path, conf, "stderr", user, group), "-t", "-q"]


def prepare_prefix(prefix: Path, worker_uid: int | None = None) -> None:
    """Directories nginx writes to under its prefix (temp paths in our example conf).

    As root, nginx's workers run as another user: the temp dirs are theirs (0700).
    """
    prefix.mkdir(parents=True, exist_ok=True)
    os.chmod(prefix, 0o755)
    for sub in ("logs", "tmp", *(f"tmp/{name}" for name in TEMP_DIRS)):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    if worker_uid is not None and os.geteuid() == 0:
        for name in TEMP_DIRS:
            os.chown(prefix / "tmp" / name, worker_uid, -1)
            os.chmod(prefix / "tmp" / name, 0o700)


def worker_user(conf: NginxConf, configured: str) -> str:
    """Who nginx's workers run as: the conf's ``user``, else fnud's, else nobody."""
    found = [d for d in conf.named("user") if d.file == conf.files[0] and d.args]
    if found:
        return found[0].args[0]
    return configured or "nobody"


def worker_uid(conf: NginxConf, configured: str) -> int | None:
    try:
        return pwd.getpwnam(worker_user(conf, configured)).pw_uid
    except KeyError:
        return None


_ENTRY_RE = re.compile(
    r"^(?:\d{4}/\d\d/\d\d \d\d:\d\d:\d\d )?\[(?P<level>[a-z]+)\] (?:\d+#\d+: )?(?P<text>.*)$",
    re.DOTALL,
)
_WHERE_RE = re.compile(r"^(?P<text>.*) in (?P<file>.+):(?P<line>\d+)$", re.DOTALL)


def parse_test_line(line: str, conf_path: Path) -> Message | None:
    """One line of ``nginx -t`` (its ``nginx: `` prefix removed) as a Message; None for
    the summary ("configuration file ... test failed"), which only repeats the others."""
    if line.startswith("configuration file ") and line.endswith("test failed"):
        return None
    entry = _ENTRY_RE.match(line)
    level, text = (entry.group("level"), entry.group("text")) if entry else ("", line)
    where = _WHERE_RE.match(text)
    if where:
        return Message(where.group("file"), int(where.group("line")), where.group("text"), level)
    return Message(str(conf_path), 0, text, level)


@dataclass(frozen=True)
class ConfigTest:
    """What ``nginx -t`` said: its exit, and its lines (without nginx's own noise)."""

    ok: bool
    lines: tuple[str, ...]
    conf_path: Path

    @property
    def messages(self) -> list[Message]:
        parsed = (parse_test_line(line, self.conf_path) for line in self.lines)
        return [message for message in parsed if message is not None]

    @property
    def text(self) -> str:
        """One line for a log or an answer."""
        return "; ".join(self.lines)


async def config_test(
    binary: str,
    prefix: Path,
    conf_path: Path,
    conf: NginxConf,
    env: dict[str, str],
    user: str = "",
    group: str = "",
) -> ConfigTest:
    """Run ``nginx -t`` with exactly the flags fnud runs nginx with."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *test_argv(binary, prefix, conf_path, conf, user, group),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            cwd=str(conf_path.parent),
            start_new_session=True,
        )
    except OSError as exc:
        return ConfigTest(False, (f"{binary}: {exc.strerror}",), conf_path)
    out, _ = await proc.communicate()
    lines = tuple(
        line.removeprefix("nginx: ")
        for line in out.decode(errors="replace").splitlines()
        if line.strip() and "test is successful" not in line and "syntax is ok" not in line
    )
    return ConfigTest(proc.returncode == 0, lines, conf_path)


def worker_pids(master_pid: int) -> set[int]:
    """PIDs of the master's worker children (cache manager/loader included)."""
    return child_pids(master_pid)


class NginxDriver:
    """Runs nginx's master in the foreground under fnud."""

    name = "nginx"
    orphan_signal: int | None = GRACEFUL_STOP
    orphan_grace = 2.0

    def __init__(
        self,
        binary: str,
        conf_path: Path,
        prefix: Path,
        env: dict[str, str],
        log_path: Path,
        holder: Holder | None = None,
    ) -> None:
        self.holder = holder
        self.log_path = log_path
        self.user = ""  # fnud's [fnud] user/group, applied as root when the conf has none
        self.group = ""
        self.binary = binary
        self.conf_path = conf_path
        self.prefix = prefix
        self.env = env

    def command(self) -> Command:
        conf = analyze(self.conf_path)
        prepare_prefix(self.prefix, worker_uid(conf, self.user))
        held = self.sockets(conf)
        env = dict(self.env)
        if held:  # nginx's binary-upgrade variable: it takes these instead of binding
            env[INHERITED_SOCKETS] = "".join(f"{h.fd};" for h in held)
        return Command(
            argv=argv(
                self.binary, self.prefix, self.conf_path, conf, str(self.log_path),
                self.user, self.group,
            ),
            cwd=str(self.conf_path.parent),
            env=env,
            pass_fds=tuple(h.fd for h in held),
        )

    def specs(self, conf: NginxConf) -> list[Spec]:
        return nginx_specs((d.file, d.line, d.args) for d in conf.named("listen"))

    def sockets(self, conf: NginxConf) -> list[Held]:
        """Hold the conf's inet listens (binding new ones, closing removed ones)."""
        if self.holder is None:
            return []
        specs = self.specs(conf)
        self.holder.keep_only(spec.key for spec in specs)
        return self.holder.ensure(specs)

    def holds_sockets(self) -> bool:
        """Every listen is one fnud holds already (not one nginx bound on a reload)."""
        if self.holder is None:
            return False
        conf = analyze(self.conf_path)
        listens = conf.named("listen")
        specs = self.specs(conf)
        return len(specs) == len(listens) and all(s.key in self.holder.held for s in specs)

    async def not_ready_reason(self, pid: int) -> str | None:
        return None if worker_pids(pid) else "waiting for nginx workers"

    async def reopen_logs(self, pid: int) -> None:
        os.kill(pid, REOPEN_LOGS)

    async def request_stop(self, pid: int) -> None:
        os.kill(pid, GRACEFUL_STOP)

    def log_level(self, line: str) -> str:
        return "info"
