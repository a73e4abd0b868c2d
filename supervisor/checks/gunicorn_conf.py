"""A gunicorn stack: [gunicorn] in fnud.toml and the gunicorn.conf.py it names, read
with ``ast`` (never run here): the app's directory exists; nothing in the conf detaches
gunicorn from fnud, binds beside the socket fnud holds or reloads behind the gate; what
fnud's own settings replace is said."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from supervisor.checks.finding import Finding, error, warning
from supervisor.checks.inputs import Inputs, path_is
from supervisor.config.parse import locate
from supervisor.gunicorn.conf import UNKNOWN, Assignment, ConfFile

#: settings that would take gunicorn away from fnud: (why, how to do without)
REFUSED = {
    "daemon": ("gunicorn would detach from fnud", "fnud runs it in the foreground: remove it"),
    "pidfile": ("fnud knows its masters' pids itself", "remove it"),
    "reuse_port": ("its workers would bind sockets of their own, beside the one fnud holds",
                   "remove it"),
    "reload": ("gunicorn's own reloader would restart workers on a save, past fnud's gate",
               "remove it; [watch] enabled = true reloads through the gate"),
    "check_config": ("gunicorn would exit after checking", "remove it; fnud check does that"),
    "print_config": ("gunicorn would exit after printing", "remove it"),
    "user": ("fnud gives the workers' files to [fnud] user, not to this one",
             "set [fnud] user in fnud.toml instead"),
    "group": ("fnud gives the workers' files to [fnud] group, not to this one",
              "set [fnud] group in fnud.toml instead"),
}
#: settings fnud sets itself for every generation: what it sets instead
REPLACED = {
    "proc_name": "a name carrying the generation's config file",
    "control_socket": "no control socket", "control_socket_disable": "no control socket",
    "chdir": "[gunicorn] chdir, resolved once per generation",
}
SYSTEMD = ("LISTEN_", "NOTIFY_SOCKET")


def check(inputs: Inputs) -> list[Finding]:
    config = inputs.config
    if config.app_server != "gunicorn":
        return []
    section = config.gunicorn
    out = []
    if not path_is(Path.is_dir, section.chdir):
        out.append(error(
            config.path, locate(inputs.toml_text, "gunicorn", "chdir"),
            f"[gunicorn] chdir: {section.chdir} is not a directory",
            "the app's directory: where its module is; relative to fnud.toml's directory",
        ))
    conf = inputs.gunicorn_conf
    if conf is None or section.conf is None:
        return out  # no conf, or one that cannot be read (fnud.toml's check says so)
    if conf.error is not None:
        line, message = conf.error
        return [*out, error(section.conf, line, f"gunicorn would not read it: {message}")]
    return out + refused(conf, section.conf) + binds(conf, section.conf, section.bind) + (
        environment(conf, section.conf) + replaced(conf, section.conf, inputs)
    )


def _set(assignment: Assignment) -> bool:
    """The assignment may turn the setting on (not a literal false, None, 0 or '')."""
    return assignment.value is UNKNOWN or bool(assignment.value)


def refused(conf: ConfFile, path: Path) -> list[Finding]:
    out = []
    for name, (why, hint) in REFUSED.items():
        for assignment in conf.settings.get(name, []):
            if _set(assignment):
                out.append(error(path, assignment.line, f"{name}: {why}", hint))
    return out


def binds(conf: ConfFile, path: Path, bind: str) -> list[Finding]:
    """fnud holds [gunicorn] bind and hands gunicorn that socket only."""
    out = []
    for assignment in conf.settings.get("bind", []):
        value: Any = assignment.value
        values = [value] if isinstance(value, str) else value
        if isinstance(values, (list, tuple)) and [str(v) for v in values] in ([bind], []):
            continue  # the address fnud holds anyway
        shown = "a value known only when it runs" if value is UNKNOWN else repr(value)
        out.append(error(
            path, assignment.line,
            f"bind = {shown}: a second address beside [gunicorn] bind = \"{bind}\", the "
            "socket fnud holds (gunicorn would bind it on a reload of its own)",
            "remove bind here; nginx's proxy_pass goes to [gunicorn] bind",
        ))
    return out


def environment(conf: ConfFile, path: Path) -> list[Finding]:
    out = []
    for assignment in conf.settings.get("raw_env", []):
        value: Any = assignment.value
        if value is UNKNOWN:
            continue
        entries = value if isinstance(value, (list, tuple)) else [value]
        for entry in entries:
            if str(entry).startswith(SYSTEMD):
                out.append(error(
                    path, assignment.line,
                    f"raw_env {str(entry)[:40]!r}: the held socket reaches gunicorn by "
                    "LISTEN_FDS/LISTEN_PID, which fnud sets", "remove it",
                ))
    return out


def replaced(conf: ConfFile, path: Path, inputs: Inputs) -> list[Finding]:
    section = inputs.config.gunicorn
    out = []
    for name, instead in REPLACED.items():
        last = conf.last(name)
        if last is not None:
            out.append(warning(path, last.line, f"{name}: fnud sets {instead}", "remove it"))
    for name, value in (("workers", section.workers), ("threads", section.threads)):
        last = conf.last(name)
        if last is not None and value:
            out.append(warning(
                path, last.line, f"{name}: [gunicorn] {name} = {value} in fnud.toml wins",
                f"keep one of the two (fnud.toml's {name} = 0 leaves it to this file)",
            ))
    worker_class = conf.value("worker_class", "sync")
    if isinstance(worker_class, str) and worker_class not in ("sync", "gthread") and (
        not worker_class.endswith((".SyncWorker", ".ThreadWorker"))
    ):
        last = conf.last("worker_class")
        out.append(warning(
            path, last.line if last else 0,
            f"worker_class = {worker_class!r}: fnud cannot keep the previous generation warm "
            "with these workers; a rollback starts its release again (cold)",
            "sync and gthread workers pause (docs/gunicorn.md)",
        ))
    return out
