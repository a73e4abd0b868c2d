"""fnud's gunicorn config: each generation runs under a copy of this file, rendered into
the runtime dir with its SETTINGS filled in (wrapper.py). fnud never imports it.

It runs your gunicorn.conf.py (the copy the generation pinned when it started) in a
namespace of its own, takes its settings, then sets what fnud owns: no daemon, no pid
file, no control socket, no reuse_port (the held socket comes by LISTEN_FDS), the app's
directory as pinned. Its logger class is yours (gunicorn's by default) with one line
more per answer on stdout, ``fnud-answer <pid> status method "path" Nms`` (one write,
no formatting of gunicorn's access log atoms): your own access log, if you have one,
is written as before. Its hooks run yours, then write the events fnud reads: the master
is ready, a worker loaded the app, a worker exited, a worker parked or took requests
again.

Pausing (a warm generation kept for a rollback): fnud writes 1 into the generation's
control file, a byte every worker maps. A sync worker parks at the top of its loop,
between two requests, without accepting; a gthread worker stops polling the listening
socket (what it already took is answered). Both keep their heartbeat, so the master does
not replace them. SIGURG wakes them to look at once (a worker that has not installed
these hooks yet ignores it: that is SIGURG's default).

It runs in the app's own Python: standard library only, Python 3.8 syntax.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import mmap
import os
import select
import signal
import time
from collections.abc import Callable
from typing import Any

SETTINGS: dict[str, Any] = {}  # fnud renders each generation's settings here

_FNUD_SYSTEMD = ("LISTEN_", "NOTIFY_SOCKET")
_FNUD_PARK_POLL = 0.05  # a parked worker looks at the control byte this often, at least


def _fnud_user_conf() -> dict[str, Any]:
    """The user's config run as gunicorn runs one (``__file__`` is theirs)."""
    name = SETTINGS.get("user_conf_name") or "gunicorn.conf.py"
    namespace: dict[str, Any] = {"__file__": name, "__name__": "__config__"}
    path = SETTINGS.get("user_conf")
    if path:
        with open(path, "rb") as source:
            code = compile(source.read(), name, "exec")
        exec(code, namespace)
    return namespace


_FNUD_USER = _fnud_user_conf()
globals().update({
    key: value for key, value in _FNUD_USER.items()
    if not key.startswith(("__", "_fnud", "_FNUD")) and key != "SETTINGS"
})

daemon = False
pidfile = None
control_socket_disable = True
reuse_port = False
chdir = SETTINGS.get("chdir") or os.getcwd()
proc_name = SETTINGS.get("proc_name") or "gunicorn"
raw_env = [
    entry for entry in (globals().get("raw_env") or [])
    if not str(entry).startswith(_FNUD_SYSTEMD)
]
if SETTINGS.get("workers"):
    workers = SETTINGS["workers"]
if SETTINGS.get("threads"):
    threads = SETTINGS["threads"]


def _fnud_logger(theirs: Any) -> Any:
    """Their logger class (a class or a dotted name; gunicorn's by default), writing
    fnud's answer line before anything of its own."""
    from gunicorn import util  # type: ignore[import-untyped]

    base = theirs if isinstance(theirs, type) else util.load_class(
        theirs or "gunicorn.glogging.Logger", default="gunicorn.glogging.Logger",
        section="gunicorn.loggers",
    )

    class FnudLogger(base):  # type: ignore[misc,valid-type]
        @property
        def access_log_enabled(self) -> bool:  # gunicorn asks before it calls access()
            return True

        def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
            status = getattr(resp, "status_code", None) or str(resp.status).split(" ")[0]
            spent = request_time.seconds * 1000 + request_time.microseconds // 1000
            method, path = environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")
            line = f'fnud-answer <{os.getpid()}> {status} {method} "{path}" {spent}ms\n'
            with contextlib.suppress(OSError):
                os.write(1, line.encode("utf-8", "replace"))
            if _fnud_theirs_enabled(self.cfg):
                super().access(resp, req, environ, request_time)

    return FnudLogger


def _fnud_theirs_enabled(cfg: Any) -> bool:
    """Whether gunicorn would write an access log of its own for this config."""
    return bool(
        cfg.accesslog or cfg.logconfig or getattr(cfg, "logconfig_dict", None)
        or getattr(cfg, "logconfig_json", None)
        or (cfg.syslog and not cfg.disable_redirect_access_to_syslog)
    )


logger_class = _fnud_logger(globals().get("logger_class"))


def _fnud_emit(kind: str, **facts: Any) -> None:
    """One JSON line in the events file (O_APPEND: one write per line)."""
    facts.update(ev=kind, pid=os.getpid(), t=time.time())
    try:
        fd = os.open(SETTINGS["events"], os.O_WRONLY | os.O_APPEND)
    except (KeyError, OSError):
        return
    try:
        os.write(fd, (json.dumps(facts) + "\n").encode())
    finally:
        os.close(fd)


def _fnud_user_hook(name: str) -> Callable[..., Any] | None:
    hook = _FNUD_USER.get(name)
    if isinstance(hook, str) and "." in hook:  # gunicorn takes "module.function" too
        module, _, attribute = hook.rpartition(".")
        hook = getattr(importlib.import_module(module), attribute)
    return hook if callable(hook) else None


def _fnud_pause_kind(worker_class: Any) -> str:
    """"sync" or "gthread" when fnud can pause these workers, else ""."""
    try:
        from gunicorn.workers.gthread import ThreadWorker  # type: ignore[import-untyped]
        from gunicorn.workers.sync import SyncWorker  # type: ignore[import-untyped]
    except ImportError:
        return ""
    if isinstance(worker_class, type) and issubclass(worker_class, ThreadWorker):
        # its accept switch (gunicorn 27's event loop); without it, no pause
        return "gthread" if hasattr(worker_class, "set_accept_enabled") else ""
    if isinstance(worker_class, type) and issubclass(worker_class, SyncWorker):
        return "sync"
    return ""


def when_ready(server: Any) -> None:
    user = _fnud_user_hook("when_ready")
    if user is not None:
        user(server)
    _fnud_emit("master", workers=server.num_workers,
               pause=_fnud_pause_kind(server.worker_class))


def post_worker_init(worker: Any) -> None:
    user = _fnud_user_hook("post_worker_init")
    if user is not None:
        user(worker)
    _fnud_install_pause(worker)
    _fnud_emit("ready", ppid=worker.ppid, age=worker.age)


def child_exit(server: Any, worker: Any) -> None:
    user = _fnud_user_hook("child_exit")
    if user is not None:
        user(server, worker)
    _fnud_emit("exit", worker=worker.pid)


def _fnud_control() -> mmap.mmap | None:
    try:
        fd = os.open(SETTINGS["control"], os.O_RDONLY)
    except (KeyError, OSError):
        return None
    try:
        return mmap.mmap(fd, 1, prot=mmap.PROT_READ)
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)


def _fnud_install_pause(worker: Any) -> None:
    kind = _fnud_pause_kind(type(worker))
    control = _fnud_control() if kind else None
    if control is None:
        return

    def paused() -> bool:
        return control[0] != 0

    if kind == "gthread":
        _fnud_pause_gthread(worker, paused)
    else:
        _fnud_pause_sync(worker, paused)


def _fnud_pause_sync(worker: Any, paused: Callable[[], bool]) -> None:
    beat = worker.notify  # the heartbeat, called at the top of each loop

    def notify() -> None:
        beat()
        if paused() and worker.alive:
            _fnud_park(worker, beat, paused)

    worker.notify = notify
    # its handler is nothing: gunicorn's wakeup fd (the worker's pipe) ends the select
    signal.signal(signal.SIGURG, lambda signum, frame: None)


def _fnud_park(worker: Any, beat: Callable[[], None], paused: Callable[[], bool]) -> None:
    """Between two requests, holding no connection: wait for the control byte to clear
    (or a stop), keeping the heartbeat fresh."""
    _fnud_emit("parked")
    while paused() and worker.alive:
        beat()
        try:
            readable, _, _ = select.select([worker.PIPE[0]], [], [], _FNUD_PARK_POLL)
            if readable:
                os.read(worker.PIPE[0], 64)
        except OSError:
            pass
    with contextlib.suppress(OSError):  # a wakeup byte its select may be owed (SIGTERM)
        os.write(worker.PIPE[1], b".")
    _fnud_emit("unparked")


def _fnud_pause_gthread(worker: Any, paused: Callable[[], bool]) -> None:
    enable = worker.set_accept_enabled
    beat = worker.notify
    parked = [False]

    def set_accept_enabled(enabled: bool) -> None:
        enable(enabled and not paused())

    def notify() -> None:  # at the top of each loop; the loop then (re)enables accepting
        beat()
        if paused():
            if getattr(worker, "_accepting", False):
                enable(False)
            if not parked[0]:
                parked[0] = True
                _fnud_emit("parked")
        elif parked[0]:
            parked[0] = False
            _fnud_emit("unparked")

    def wake(signum: int, frame: Any) -> None:
        queue = getattr(worker, "method_queue", None)
        fd = getattr(queue, "_write_fd", None)
        if fd is not None:  # a byte on its queue's pipe ends the poll (no lock taken)
            with contextlib.suppress(OSError):
                os.write(fd, b"\0")

    worker.set_accept_enabled = set_accept_enabled
    worker.notify = notify
    signal.signal(signal.SIGURG, wake)
