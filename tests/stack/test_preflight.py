"""The app preflight in a real fresh interpreter: it resolves what uWSGI resolves and
names the file and line of a failure."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from supervisor.checks import uwsgi_ini
from supervisor.checks import uwsgi_values as values
from supervisor.reload.preflight import PreflightError, preflight
from supervisor.uwsgi.app import app_spec
from supervisor.uwsgi.ini import parse_ini


def _stack(tmp_path: Path, ini_text: str) -> tuple[Path, Path]:
    home = tmp_path / "home"
    (home / "lib").mkdir(parents=True)
    (home / "myapp.py").write_text(APP)
    ini = tmp_path / "etc" / "uwsgi.ini"
    ini.parent.mkdir()
    ini.write_text(ini_text)
    return home, ini


APP = "def application(environ, start_response):\n    return []\n"


def test_env_placeholder_in_chdir_means_the_same_to_check_and_preflight(
    tmp_path: Path,
) -> None:
    text = "[uwsgi]\nchdir = $(APP_HOME)\nmodule = myapp\nmaster = true\nlazy-apps = true\n"
    home, ini_path = _stack(tmp_path, text)
    environ = {"APP_HOME": str(home), "PATH": "/usr/bin:/bin"}
    ini = parse_ini(text)
    assert uwsgi_ini.missing_paths(ini, ini_path, environ) == []
    spec = app_spec(ini, ini_path, environ=environ)
    assert Path(spec.chdir) == home == values.workdir(ini, ini_path, environ)
    loaded = asyncio.run(preflight(spec, environ, timeout=30))
    assert Path(loaded) == home / "myapp.py"


def test_preflight_failure_names_file_and_line(tmp_path: Path) -> None:
    text = "[uwsgi]\nchdir = %d\nmodule = broken\n"
    ini_path = tmp_path / "uwsgi.ini"
    ini_path.write_text(text)
    (tmp_path / "broken.py").write_text("x = 1\ndef f(:\n")
    spec = app_spec(parse_ini(text), ini_path, environ={})
    with pytest.raises(PreflightError) as info:
        asyncio.run(preflight(spec, {"PATH": "/usr/bin:/bin"}, timeout=30))
    error = info.value
    assert (error.file, error.line) == (str(tmp_path / "broken.py"), 2)
    assert error.message.startswith("SyntaxError: ")
    assert str(error) == f"{error.file}:2: {error.message}"
