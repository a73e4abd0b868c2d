"""What a gunicorn generation loads: its source (your conf's text and the app directory,
pinned at its first start) and the app as gunicorn imports it (the preflight's spec)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from supervisor.appserver.spec import AppSpec
from supervisor.common.childenv import child_env
from supervisor.common.runas import RunAs
from supervisor.common.trust import read_untrusted_text
from supervisor.gunicorn.conf import read_conf
from supervisor.runtime.paths import Paths
from supervisor.sockets.held import Holder, Spec

CHDIR = 0  # the key of the pinned app directory among a release's pins
PREFIXES = ("GUNICORN_",)  # GUNICORN_CMD_ARGS would override fnud's command line


@dataclass(frozen=True)
class GunicornSettings:
    """What every generation of one config shares (the stack builds it from its plan)."""

    python: str  # the app virtualenv's interpreter: `python -m gunicorn`
    app: str  # "module:callable" as gunicorn takes it
    chdir: Path  # the app's directory, as configured (a symlink is followed once)
    bind: Spec  # the socket fnud holds for it
    workers: int  # 0: the conf's
    threads: int  # 0: the conf's
    conf: Path | None  # the user's gunicorn.conf.py
    paths: Paths
    environ: Mapping[str, str]  # fnud's own; children get it scrubbed
    log_path: Path
    holder: Holder | None = None
    # [fnud] user when fnud is root: the arbiter and its workers run as that user from
    # the exec on (the conf, preload_app and hooks run as that user too)
    run_as: RunAs | None = None


def gunicorn_env(environ: Mapping[str, str]) -> dict[str, str]:
    """What gunicorn gets: every child's environment, without GUNICORN_*."""
    return child_env(environ, PREFIXES)


def take_source(settings: GunicornSettings) -> tuple[str, dict[int, str]]:
    """The conf's text ('' without one) and the app directory resolved now (raises
    OSError when the conf cannot be read)."""
    text = read_untrusted_text(settings.conf) if settings.conf is not None else ""
    return text, {CHDIR: os.path.realpath(settings.chdir)}


def gunicorn_spec(
    settings: GunicornSettings, source: tuple[str, dict[int, str]] | None = None
) -> AppSpec:
    """The app as gunicorn imports it: ``module:callable`` (a factory call allowed) from
    the pinned directory, with the conf's ``pythonpath`` and ``raw_env`` (as literals)."""
    text, pins = source if source is not None else take_source(settings)
    chdir = pins.get(CHDIR) or os.path.realpath(settings.chdir)
    conf = read_conf(text)
    pythonpath = conf.value("pythonpath", "")
    paths = [p for p in pythonpath.split(",") if p] if isinstance(pythonpath, str) else []
    raw_env = conf.value("raw_env", [])
    env = [str(e).split("=", 1) for e in raw_env] if isinstance(raw_env, (list, tuple)) else []
    module, _, obj = settings.app.partition(":")
    return AppSpec(
        python=settings.python,
        chdir=chdir,
        pythonpath=tuple(os.path.normpath(os.path.join(chdir, p)) for p in paths),
        env=tuple((pair[0], pair[1]) for pair in env if len(pair) == 2),
        module=module,
        wsgi_file="",
        callable=obj or "application",  # gunicorn's default
        factory=True,
    )
