"""fnud.toml parsing: defaults, relative paths, errors that name file and line, lookup order."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.common.ports import Address, parse_host_port, parse_nginx_listen
from supervisor.config import client as clientconf
from supervisor.config.client import config_path
from supervisor.config.parse import ConfigError, load_config, parse_config, restart_required

TOKEN = "test-token-0123456789abcdef"


def _config(text: str) -> Any:
    return parse_config(text, Path("/etc/fnud/fnud.toml"))


def test_config_relative_paths_and_defaults() -> None:
    config = parse_config('[uwsgi]\nini = "u.ini"\n', Path("/etc/fnud/fnud.toml"))
    assert config.uwsgi.ini == Path("/etc/fnud/u.ini")
    assert config.fnud.runtime_dir == Path("/etc/fnud/run")
    assert config.nginx_prefix == Path("/etc/fnud/run-nginx")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[fnud]\nbogus = 1\n", "fnud.toml:2: unknown key 'bogus' in [fnud]"),
        ("[fnud]\n\nstop_timeout = 'x'\n", "fnud.toml:3: [fnud] stop_timeout must be a number"),
        ("[nope]\n", "fnud.toml:1: unknown section [nope]"),
        ("a = [\n", "fnud.toml:1: invalid TOML"),
        ("[health]\nurl = 'https://x/'\n", "fnud.toml:2: [health] url must be an http:// URL"),
        ("[watch]\nenabled = 1\n", "fnud.toml:2: [watch] enabled must be true or false"),
    ],
)
def test_config_errors_name_file_and_line(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, Path("/c/fnud.toml"))
    error = info.value
    assert str(error).startswith("/c/" + expected), str(error)
    assert error.path == "/c/fnud.toml" and error.hint
    assert str(error) == f"{error.path}:{error.line}: {error.message}"


def test_a_nul_in_a_home_path_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"fnud\.toml:2: \[fnud\] runtime_dir must be a path"):
        parse_config('[fnud]\nruntime_dir = "~\\u0000x/run"\n', Path("/c/fnud.toml"))


@given(st.text(max_size=300))
@settings(max_examples=200, deadline=None)
def test_config_parser_only_raises_config_errors(text: str) -> None:
    with contextlib.suppress(ConfigError):
        parse_config(text, Path("/c/fnud.toml"))


def test_config_lookup_order() -> None:
    assert config_path("a.toml", {"FNUD_CONFIG": "b.toml"}) == Path("a.toml")
    assert config_path(None, {"FNUD_CONFIG": "b.toml"}) == Path("b.toml")
    assert config_path(None, {}) == Path("config/fnud.toml")


def test_listen_and_socket_addresses() -> None:
    assert parse_nginx_listen("8080") == Address("0.0.0.0", 8080)
    assert parse_nginx_listen("127.0.0.1:8080") == Address("127.0.0.1", 8080)
    assert parse_nginx_listen("[::1]:81") == Address("::1", 81)
    assert parse_nginx_listen("*:80") == Address("0.0.0.0", 80)
    assert parse_nginx_listen("unix:/run/x.sock") is None
    assert parse_host_port(":3031") == Address("0.0.0.0", 3031)
    assert parse_host_port("127.0.0.1:3031") == Address("127.0.0.1", 3031)
    assert parse_host_port("/run/app.sock") is None


@pytest.mark.parametrize(
    "text",
    ['[health]\nurl = "http://127.0.0.1:99999/"\n', '[metrics]\nlisten = "127.0.0.1:70000"\n'],
)
def test_ports_out_of_range_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError, match=r"fnud\.toml:2:"):
        parse_config(text, Path("/c/fnud.toml"))


def test_a_reload_cannot_move_the_runtime_dir() -> None:
    from supervisor.config.parse import restart_required

    old = parse_config("", Path("/c/fnud.toml"))
    new = parse_config('[fnud]\nruntime_dir = "/run/x"\n[health]\ntimeout = 9\n', old.path)
    assert restart_required(old, new) == ["[fnud] runtime_dir", "[nginx] prefix"]


@pytest.mark.parametrize(
    ("listen", "address"),
    [("127.0.0.1:9300", Address("127.0.0.1", 9300)), ("[::1]:9300", Address("::1", 9300)),
     ("", None)],
)
def test_metrics_listen_is_parsed_once(listen: str, address: Address | None) -> None:
    config = parse_config(f'[metrics]\nlisten = "{listen}"\n', Path("/c/fnud.toml"))
    assert config.metrics.address == address


def test_derived_fields_are_not_keys() -> None:
    with pytest.raises(ConfigError, match="unknown key 'address'"):
        parse_config('[metrics]\naddress = "x"\n', Path("/c/fnud.toml"))


def test_web_is_off_by_default() -> None:
    web = _config("").web
    assert web.listen == "" and web.token == ""


@pytest.mark.parametrize("listen", ["127.0.0.1:9300", "localhost:9300", "[::1]:9300",
                                    "127.0.0.2:80"])
def test_web_listens_on_loopback_without_a_token(listen: str) -> None:
    assert _config(f'[web]\nlisten = "{listen}"\n').web.listen == listen


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[web]\nlisten = "0.0.0.0:9300"\n', "fnud.toml:2: [web] listen on 0.0.0.0 (beyond "
                                              "loopback) needs a [web] token"),
        ('[web]\nlisten = "10.0.0.1:9300"\n', "fnud.toml:2: [web] listen on 10.0.0.1"),
        ('[web]\nlisten = "127.0.0.1"\n', "fnud.toml:2: [web] listen must be HOST:PORT"),
        ('[web]\n\ntoken = "short"\n', "fnud.toml:3: [web] token must be 16+ printable"),
        ('[web]\ntoken = "with a space in it, long"\n', "fnud.toml:2: [web] token must be"),
    ],
)
def test_web_config_errors_name_file_and_line(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _config(text)
    assert str(caught.value).startswith("/etc/fnud/" + expected.split(":", 1)[0])
    assert expected in str(caught.value)


def test_web_beyond_loopback_with_a_token() -> None:
    web = _config(f'[web]\nlisten = "0.0.0.0:9300"\ntoken = "{TOKEN}"\n').web
    assert (web.listen, web.token) == ("0.0.0.0:9300", TOKEN)


@pytest.mark.parametrize("text", [
    "",
    '[fnud]\nruntime_dir = "/tmp/fnud-x/run"\nlog_dir = "~/logs"\nstop_timeout = 3\n',
    '[fnud]\nruntime_dir = "a/../b"\n[uwsgi]\nreload_timeout = 7.5\n'
    '[nginx]\nprefix = "np"\nreload_timeout = 2\n',
    '[nginx]\nprefix = "/abs/prefix"\n[health]\nurl = "http://127.0.0.1:9/"\n',
])
def test_clientconf_reads_what_config_reads(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fnud.toml"
    path.write_text(text)
    assert clientconf.read(path) == clientconf.from_config(load_config(path))


@pytest.mark.parametrize("text", [
    "[fnud\n", '[fnud]\nruntime_dir = 3\n', '[fnud]\nstop_timeout = "x"\n', "fnud = 1\n",
])
def test_clientconf_leaves_bad_files_to_config(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fnud.toml"
    path.write_text(text)
    assert clientconf.read(path) is None
    assert clientconf.read(tmp_path / "missing.toml") is None


def test_a_gunicorn_section_replaces_uwsgi() -> None:
    config = _config(
        '[gunicorn]\napp = "app:create_app()"\nchdir = "app"\nconf = "g.conf.py"\nworkers = 4\n'
    )
    assert (config.server, config.app_server, config.balancer) == ("gunicorn", "gunicorn", False)
    section = config.gunicorn
    assert section.chdir == Path("/etc/fnud/app") and section.conf == Path("/etc/fnud/g.conf.py")
    assert (section.bind, section.workers, section.threads) == ("127.0.0.1:8001", 4, 0)
    assert config.app_config_files == (Path("/etc/fnud/g.conf.py"),)
    assert config.generation_reloads and config.app_reload_timeout == config.fnud.start_timeout
    assert _config('[gunicorn]\napp = "app"\n').gunicorn.conf is None
    assert _config("").server == "uwsgi"  # neither section: uWSGI's defaults, as before


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[uwsgi]\n\n[gunicorn]\napp = "a:b"\n',
         "fnud.toml:3: [uwsgi] and [gunicorn] are both set"),
        ("[gunicorn]\nworkers = 2\n", "fnud.toml:1: [gunicorn] app is required"),
        ('[gunicorn]\napp = "a-b:app"\n', "fnud.toml:2: [gunicorn] app: 'a-b' is not a module"),
        ('[gunicorn]\napp = "a:make(x)"\n', "fnud.toml:2: [gunicorn] app: the arguments of"),
        ('[gunicorn]\napp = "a:b.c"\n', "fnud.toml:2: [gunicorn] app: 'b.c' is neither"),
        ('[gunicorn]\napp = "a"\nbind = "unix:run/a.sock"\n',
         "fnud.toml:3: [gunicorn] bind must be HOST:PORT or unix:/absolute/path"),
        ('[gunicorn]\napp = "a"\nbind = "fd://3"\n', "fnud.toml:3: [gunicorn] bind must be"),
        ('[gunicorn]\napp = "a"\nreload = "chain"\n', "fnud.toml:3: [gunicorn] reload must be"),
        ('[fnud]\nbalancer = true\n[gunicorn]\napp = "a"\n',
         "fnud.toml:3: [fnud] balancer = true runs no app server, but [gunicorn] is set"),
    ],
)
def test_gunicorn_config_errors_name_file_and_line(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, Path("/c/fnud.toml"))
    assert str(info.value).startswith("/c/" + expected), str(info.value)


def test_balancer_mode_has_a_switch_of_its_own_and_keeps_the_older_spelling() -> None:
    for text in ("[fnud]\nbalancer = true\n", "[uwsgi]\nenabled = false\n"):
        config = _config(text)
        assert config.balancer and config.app_server == "" and config.app_config_files == ()
    assert not _config("").balancer
    assert restart_required(_config(""), _config("[fnud]\nbalancer = true\n")) == [
        "the app server"
    ]
    assert restart_required(_config(""), _config('[gunicorn]\napp = "a"\n')) == [
        "the app server"
    ]


def test_clientconf_knows_which_app_servers_log_to_show(tmp_path: Path) -> None:
    path = tmp_path / "fnud.toml"
    path.write_text('[gunicorn]\napp = "app:app"\n')
    read = clientconf.read(path)
    assert read is not None and read.app_program == "gunicorn"
    assert clientconf.from_config(load_config(path)).app_program == "gunicorn"
