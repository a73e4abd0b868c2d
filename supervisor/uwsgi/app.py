"""The app uWSGI will load, read from the user's ini as uWSGI reads it."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from supervisor.appserver.spec import AppSpec
from supervisor.uwsgi import options
from supervisor.uwsgi.env import child_env
from supervisor.uwsgi.ini import UwsgiIni, parse_ini
from supervisor.uwsgi.render import render_ini


def app_spec(
    ini: UwsgiIni, ini_path: Path, python: str = "", environ: Mapping[str, str] | None = None
) -> AppSpec:
    """What uWSGI will load, from the user's ini, its placeholders expanded against
    ``environ`` as uWSGI will (default: fnud's own environment, scrubbed like uWSGI's)."""
    env = child_env(os.environ if environ is None else environ)

    def value(names: tuple[str, ...]) -> str:
        option = options.last(ini, names)
        if option is None:
            return ""
        return options.resolve(option.value, ini_path, ini, env, strict=False) or ""

    chdir = options.chdir(ini, ini_path, env, strict=False) or ini_path.parent
    venv = value(options.VIRTUALENV)
    return AppSpec(
        python=str(chdir / venv / "bin" / "python") if venv else python or sys.executable,
        chdir=str(chdir),
        pythonpath=tuple(
            options.resolve(opt.value, ini_path, ini, env, strict=False) or opt.value
            for opt in options.every(ini, options.PYTHONPATH)
        ),
        env=tuple(options.env_lines(ini, ini_path, env).items()),
        module=value(options.MODULE),
        wsgi_file=value(options.WSGI_FILE),
        callable=value(options.CALLABLE) or "application",
        stubs=("uwsgi",),  # the module uWSGI gives its apps
        file_prefix="uwsgi_file_",  # uWSGI's name for a wsgi-file's module
    )


def release_spec(
    source: tuple[str, dict[int, str]], ini_path: Path, python: str,
    environ: Mapping[str, str] | None = None,
) -> AppSpec:
    """What a generation pinned to ``source`` (its ini text and pinned paths) loads."""
    text, pinned = source
    ini = parse_ini(render_ini(text, ini_path, replace=pinned))
    return app_spec(ini, ini_path, python, environ)
