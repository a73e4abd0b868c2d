"""The one reader of uWSGI options: fnud check, the preflight and the adapter agree.

Pure and fast: no nginx, no uWSGI (the preflight test runs a plain Python).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor.uwsgi import options as uwsgi_options
from supervisor.uwsgi.app import app_spec
from supervisor.uwsgi.ini import parse_ini
from supervisor.uwsgi.render import touch_files


def test_unset_env_placeholder_stays_literal_like_uwsgi(tmp_path: Path) -> None:
    # uWSGI 2.0.31 keeps an unset $(VAR) as is (show-config printed "a$(NOPE_X)b")
    ini_path = tmp_path / "uwsgi.ini"
    ini = parse_ini("[uwsgi]\nfoo = a$(NOPE_X)b\n")
    resolve = uwsgi_options.resolve
    assert resolve("a$(NOPE_X)b", ini_path, ini, {}, strict=False) == "a$(NOPE_X)b"
    assert resolve("a$(NOPE_X)b", ini_path, ini, {}) is None  # fnud check: unknowable
    assert resolve("a$(NOPE_X)b", ini_path, ini, {"NOPE_X": "-"}) == "a-b"


def test_references_and_magic_resolve_through_other_options(tmp_path: Path) -> None:
    ini_path = tmp_path / "uwsgi.ini"
    ini = parse_ini("[uwsgi]\nbase = %dsrc\nchdir = %(base)/app\n")
    assert uwsgi_options.chdir(ini, ini_path, {}) == tmp_path / "src" / "app"


@pytest.mark.parametrize("key", ["virtualenv", "venv", "home", "pyhome"])
def test_every_virtualenv_alias_picks_the_interpreter(tmp_path: Path, key: str) -> None:
    ini_path = tmp_path / "uwsgi.ini"
    spec = app_spec(parse_ini(f"[uwsgi]\n{key} = env\nwsgi = site\n"), ini_path, environ={})
    assert spec.python == str(tmp_path / "env" / "bin" / "python")
    assert spec.module == "site"


def test_short_command_line_letters_are_not_ini_keys(tmp_path: Path) -> None:
    # uWSGI in strict mode: "unknown config directive: H" (and w, s)
    spec = app_spec(parse_ini("[uwsgi]\nH = env\nw = site\n"), tmp_path / "u.ini", "/py", {})
    assert (spec.python, spec.module) == ("/py", "")


def test_the_last_alias_wins_and_list_options_keep_every_line(tmp_path: Path) -> None:
    text = "[uwsgi]\nvenv = a\nhome = b\npythonpath = x\npp = y\nenv = K=$(V)\n"
    spec = app_spec(parse_ini(text), tmp_path / "u.ini", environ={"V": "v"})
    assert spec.python == str(tmp_path / "b" / "bin" / "python")
    assert spec.pythonpath == ("x", "y")
    assert spec.env == (("K", "v"),)
    with pytest.raises(ValueError, match="list option"):
        uwsgi_options.last(parse_ini(text), uwsgi_options.PYTHONPATH)


def test_touch_files_expand_environment_placeholders(tmp_path: Path) -> None:
    ini = parse_ini("[uwsgi]\ntouch-reload = $(STAMP)/reload\ntouch-chain-reload = %nx\n")
    ini_path = tmp_path / "app.ini"
    files = touch_files(ini, ini_path, tmp_path / "w", {"STAMP": "/stamps"})
    assert files == [Path("/stamps/reload"), tmp_path / "w" / "appx"]


