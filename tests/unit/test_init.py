"""`fnud init`'s pure parts: the seed tutorial's ini and nginx site, as text, into a
fnud-ready ini (every edit listed), a main nginx.conf and a fnud.toml."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import crossplane
import pytest

from supervisor.adopt import ini_fix, report, site, toml
from supervisor.adopt.errors import InitError
from supervisor.checks import uwsgi_ini
from supervisor.checks.inputs import gather
from supervisor.config.parse import parse_config
from supervisor.uwsgi import options
from supervisor.uwsgi.app import app_spec
from supervisor.uwsgi.ini import parse_ini
from testkit.stackdir import ROOT

SEED = ROOT / "tests" / "fixtures" / "checks" / "seed_uwsgi.ini"
SEED_INI = Path("/home/flaskproject/uwsgi.ini")


def fix(
    text: str, path: Path = SEED_INI, *, debian_uwsgi: bool = False, venv: str = ""
) -> ini_fix.FixedIni:
    source = ini_fix.Source(path, debian_uwsgi=debian_uwsgi, venv=venv)
    return ini_fix.fix_ini(textwrap.dedent(text), source)


def edits_of(fixed: ini_fix.FixedIni) -> list[tuple[int, str]]:
    return [(edit.line, edit.text) for edit in fixed.edits]


# -- the ini -----------------------------------------------------------------------------


def test_the_seed_ini_gets_every_edit() -> None:
    fixed = ini_fix.fix_ini(SEED.read_text(), ini_fix.Source(SEED_INI))
    got = edits_of(fixed)
    expected = [
        (2, "added 'master = true'"),
        *((line, "moved the inline comment") for line in (3, 7, 8, 9, 10, 11, 15)),
        (8, "made 'wsgi-file = manage.py' absolute: '/home/flaskproject/manage.py'"),
        (12, "removed 'stats = 127.0.0.1:9191'"),
        (13, "removed 'pidfile = uwsgi.pid'"),
        (14, "removed 'daemonize = ./log/uwsgi.log'"),
        (16, "removed 'master-fifo = /opt/mt-search/web-service/mfifo'"),
        (17, "removed 'touch-chain-reload = true'"),
    ]
    assert len(got) == len(expected), got
    for line, phrase in expected:
        assert any(g_line == line and phrase in text for g_line, text in got), (line, phrase)
    assert "(and the 3 comment lines continuing it)" in dict(got)[3]
    assert fixed.pidfile == "/home/flaskproject/uwsgi.pid"  # for `uwsgi --stop`


def test_the_seed_ini_keeps_its_comments_and_settings() -> None:
    fixed = ini_fix.fix_ini(SEED.read_text(), ini_fix.Source(SEED_INI))
    ini = parse_ini(fixed.text)
    assert [(o.key, o.value) for o in ini] == [
        ("master", "true"),
        ("socket", "127.0.0.1:5000"),
        ("chdir", "/home/flaskproject/"),
        ("wsgi-file", "/home/flaskproject/manage.py"),
        ("callable", "app"),
        ("processes", "4"),
        ("threads", "2"),
        ("lazy-apps", "true"),
    ]
    lines = fixed.text.split("\n")
    chdir = lines.index("chdir = /home/flaskproject/")
    assert lines[chdir - 1] == "#  项目目录"  # the comment, on its own line above
    socket_line = lines.index("socket = 127.0.0.1:5000")
    seed = SEED.read_text().split("\n")
    said = [seed[2].partition("#")[1] + seed[2].partition("#")[2]] + [
        line.strip() for line in seed[3:6]
    ]
    assert lines[socket_line - 4:socket_line] == said
    # every line of the new ini knows its original line (findings are told about those)
    assert fixed.original_line(chdir + 1) == 7
    assert fixed.original_line(socket_line + 1) == 3
    assert fixed.original_line(1) == 0  # the note on top


def test_check_finds_nothing_init_could_fix_in_the_result(tmp_path: Path) -> None:
    """fnud check's ini findings on the result: no error left (the app exists here)."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "manage.py").write_text("app = None\n")
    original = app / "uwsgi.ini"
    text = SEED.read_text().replace("/home/flaskproject/", f"{app}/")
    fixed = ini_fix.fix_ini(text, ini_fix.Source(original))
    new_dir = tmp_path / "fnud"
    new_dir.mkdir()
    (new_dir / "uwsgi.ini").write_text(fixed.text)
    toml_path = new_dir / "fnud.toml"
    config = parse_config('[uwsgi]\nini = "uwsgi.ini"\nreload = "chain"\n', toml_path)
    found = uwsgi_ini.check(gather(config, {}))
    assert [f.format() for f in found] == []
    # before: the same checks on the original
    before = uwsgi_ini.check(gather(parse_config(f'[uwsgi]\nini = "{original}"\n', toml_path)))
    assert before == []  # no such file there yet
    original.write_text(text)
    before = uwsgi_ini.check(gather(parse_config(f'[uwsgi]\nini = "{original}"\n', toml_path)))
    assert sum(f.is_error for f in before) == 13  # the README counts them too


def test_debian_uwsgi_gets_the_python3_plugin() -> None:
    fixed = ini_fix.fix_ini(SEED.read_text(), ini_fix.Source(SEED_INI, debian_uwsgi=True))
    ini = parse_ini(fixed.text)
    assert ini.value("plugins") == "python3"
    assert ini.options[0].key == "plugins"  # before any python option
    assert any("added 'plugins = python3'" in text for _, text in edits_of(fixed))
    already = fix("[uwsgi]\nplugin = python3\nmodule = app\nmaster = true\n", debian_uwsgi=True)
    assert parse_ini(already.text).value("plugins") is None


def test_magic_and_relative_paths_keep_their_meaning(tmp_path: Path) -> None:
    """From another directory, the new ini names the same files as the original did."""
    original = tmp_path / "conf" / "uwsgi.ini"
    text = """\
        [uwsgi]
        chdir = ../app
        wsgi-file = main.py
        virtualenv = %d../venv
        pythonpath = lib
        socket = app.sock
        touch-reload = %dreload.trigger
        env = NAME=%n %%d $(HOME)
        logto = $(LOGS)/uwsgi.log
        master = true
    """
    fixed = fix(text, original)
    ini = parse_ini(fixed.text)
    conf, app = tmp_path / "conf", tmp_path / "conf" / "../app"
    assert ini.value("chdir") == str(app)
    assert ini.value("wsgi-file") == str(app / "main.py")
    assert ini.value("virtualenv") == f"{conf}/../venv"
    assert ini.value("pythonpath") == str(app / "lib")
    assert ini.value("socket") == str(app / "app.sock")
    assert ini.value("touch-reload") == f"{conf}/reload.trigger"
    assert ini.value("env") == "NAME=uwsgi %%d $(HOME)"  # %% is uWSGI's, $(VAR) too
    assert ini.value("logto") == "$(LOGS)/uwsgi.log"
    assert fixed.venv == f"{conf}/../venv"
    # what the preflight makes of it, from the original and from the new place
    moved = tmp_path / "fnud" / "uwsgi.ini"
    before = app_spec(parse_ini(textwrap.dedent(text)), original, environ={})
    after = app_spec(ini, moved, environ={})
    assert os.path.join(before.chdir, before.wsgi_file) == after.wsgi_file
    assert before.python == after.python and before.chdir == after.chdir


def test_an_ini_without_chdir_gets_the_original_directory() -> None:
    fixed = fix("[uwsgi]\nmodule = app\nmaster = true\nsocket = :8001\n",
                Path("/srv/site/uwsgi.ini"))
    ini = parse_ini(fixed.text)
    assert ini.value("chdir") == "/srv/site"
    assert ini.value("socket") == ":8001"
    assert (1, "added 'chdir = /srv/site': uWSGI ran in the original ini's directory; fnud "
            "starts it in the new ini's") in edits_of(fixed)


@pytest.mark.parametrize(("line", "kept"), [
    ("master = false", "master = true"),
    ("stats = /run/app/stats.sock", "stats = /run/app/stats.sock"),
    ("touch-chain-reload = /srv/app/reload", "touch-chain-reload = /srv/app/reload"),
])
def test_values_kept_or_set(line: str, kept: str) -> None:
    fixed = fix(f"[uwsgi]\nchdir = /srv/app\nmodule = app\n{line}\n")
    assert kept in fixed.text.split("\n")


@pytest.mark.parametrize("line", [
    "daemonize2 = /var/log/app.log", "stats = @stats", "stats-server = :9191",
    "touch-reload = yes", "safe-pidfile = /tmp/app.pid", "master-fifo = %dfifo",
])
def test_options_removed(line: str) -> None:
    fixed = fix(f"[uwsgi]\nchdir = /srv/app\nmodule = app\nmaster = true\n{line}\n")
    assert parse_ini(fixed.text).get(line.split(" =")[0]) is None
    assert f"; fnud init removed: {line}" in fixed.text


def test_other_sections_are_left_alone() -> None:
    fixed = fix("[other]\nchdir = rel  # c\n[uwsgi]\nchdir = /srv\nmodule = app\nmaster = 1\n")
    assert "[other]\nchdir = rel  # c\n" in fixed.text
    assert fixed.edits == ()


def test_an_ini_without_uwsgi_section_is_refused() -> None:
    with pytest.raises(InitError, match=r"^/srv/x.ini: no options in a \[uwsgi\] section"):
        fix("[app]\nmodule = app\n", Path("/srv/x.ini"))


def test_venv_is_added_when_the_ini_has_none() -> None:
    fixed = fix("[uwsgi]\nchdir = /srv\nmodule = app\nmaster = 1\n", venv="/srv/venv")
    assert options.last(parse_ini(fixed.text), options.VIRTUALENV) is not None
    assert fixed.venv == "/srv/venv"


# -- the nginx site ----------------------------------------------------------------------


def site_stmts(tmp_path: Path, text: str) -> tuple[site.Stmt, ...]:
    path = tmp_path / "mysite"
    path.write_text(textwrap.dedent(text))
    payload = crossplane.parse(str(path), single=True, check_ctx=False, comments=False)
    assert site.first_error(payload) is None
    return site.statements(payload)


def test_relative_includes_get_links(tmp_path: Path) -> None:
    stmts = site_stmts(tmp_path, """\
        server {
            listen 80;
            ssl_certificate certs/site.pem;
            location / {
                include uwsgi_params;
                include snippets/headers.conf;
                include /etc/nginx/proxy_params;
                include snippets/*.conf;
                uwsgi_pass 127.0.0.1:5000;
            }
        }
    """)
    refs = site.conf_relative(stmts)
    assert [(r.line, r.arg) for r in refs] == [
        (3, "certs/site.pem"), (5, "uwsgi_params"), (6, "snippets/headers.conf"),
        (8, "snippets/*.conf"),
    ]
    links = site.links(refs, Path("/etc/nginx"))
    assert [(link.name, link.target) for link in links] == [
        ("certs", "/etc/nginx/certs"), ("uwsgi_params", "/etc/nginx/uwsgi_params"),
        ("snippets", "/etc/nginx/snippets"),
    ]
    assert site.include_patterns(stmts, Path("/etc/nginx")) == (
        "/etc/nginx/uwsgi_params", "/etc/nginx/snippets/headers.conf",
        "/etc/nginx/proxy_params", "/etc/nginx/snippets/*.conf",
    )


@pytest.mark.parametrize("arg", ["../shared.conf", "*.conf", "nginx.conf", "fnud.toml"])
def test_relative_includes_that_cannot_be_linked(tmp_path: Path, arg: str) -> None:
    stmts = site_stmts(tmp_path, f"server {{\n    include {arg};\n}}\n")
    with pytest.raises(InitError, match=rf"mysite:2: include {arg.replace('*', '[*]')}: "):
        site.links(site.conf_relative(stmts), Path("/etc/nginx"))


@pytest.mark.parametrize(("listen", "url"), [
    ("80", "http://127.0.0.1:80/health"),
    ("*:8080", "http://127.0.0.1:8080/health"),
    ("0.0.0.0:80 default_server", "http://127.0.0.1:80/health"),
    ("[::]:80", "http://[::1]:80/health"),
    ("[::1]:8081", "http://[::1]:8081/health"),
    ("127.0.0.2:8082", "http://127.0.0.2:8082/health"),
])
def test_health_url_from_the_first_plain_listen(tmp_path: Path, listen: str, url: str) -> None:
    stmts = site_stmts(tmp_path, f"server {{\n    listen 443 ssl;\n    listen {listen};\n}}\n")
    assert site.health_url(stmts, str(tmp_path / "mysite"), "/health") == url
    config = parse_config(f'[health]\nurl = "{url}"\n', tmp_path / "fnud.toml")
    assert config.health.url == url


def test_health_url_without_listen_or_plain_http(tmp_path: Path) -> None:
    stmts = site_stmts(tmp_path, "server {\n    server_name a;\n}\n")
    assert site.health_url(stmts, str(tmp_path / "mysite"), "/") == "http://127.0.0.1:80/"
    stmts = site_stmts(tmp_path, "server {\n    listen 443 ssl;\n}\n")
    with pytest.raises(InitError, match="mysite:2: no plain-HTTP listen"):
        site.health_url(stmts, str(tmp_path / "mysite"), "/")


def test_a_main_conf_is_not_a_site(tmp_path: Path) -> None:
    stmts = site_stmts(tmp_path, "events {}\nhttp {\n    server {}\n}\n")
    problem = site.not_a_site(stmts, str(tmp_path / "mysite"))
    assert problem is not None and problem.line == 1 and "'events'" in problem.message


def test_syntax_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "mysite"
    path.write_text("server {\n    listen 80;\n    location / {\n")
    payload = crossplane.parse(str(path), single=True, check_ctx=False, comments=False)
    problem = site.first_error(payload)
    assert problem is not None and str(problem).startswith(f"{path}:3: nginx syntax: ")


def test_prefix_relative_paths_are_reported(tmp_path: Path) -> None:
    stmts = site_stmts(tmp_path, "server {\n    root html;\n    access_log off;\n"
                       "    error_log /var/log/x.log;\n    alias $x;\n}\n")
    found = site.prefix_relative(stmts)
    assert [(f.line, f.severity) for f in found] == [(2, "warning")]


@pytest.mark.parametrize(("ini", "protocol", "address"), [
    ("socket = 127.0.0.1:5000", "uwsgi", "127.0.0.1:5000"),
    ("socket = :5000", "uwsgi", "127.0.0.1:5000"),
    ("http-socket = [::]:8001", "http", "[::1]:8001"),
    ("http = 0.0.0.0:5000", "http", "127.0.0.1:5000"),
    ("uwsgi-socket = /run/app/app.sock", "uwsgi", "unix:/run/app/app.sock"),
    ("socket = /run/app.sock\nprotocol = http", "http", "unix:/run/app.sock"),
])
def test_upstream_from_the_ini(ini: str, protocol: str, address: str) -> None:
    up = site.upstream(parse_ini(f"[uwsgi]\n{ini}\n"))
    assert up == site.Upstream(protocol, address)


def test_generated_main_conf_parses(tmp_path: Path) -> None:
    up = site.Upstream("uwsgi", "127.0.0.1:5000")
    for params in ("", "/etc/nginx/uwsgi_params"):
        body = site.default_server("127.0.0.1:8080", up, params)
        text = site.main_conf(body=body, origin="the app", mime_types="")
        conf = tmp_path / "nginx.conf"
        conf.write_text(text)
        payload = crossplane.parse(str(conf), single=True, comments=False)
        assert payload["errors"] == [], payload["errors"]
        names = {s.name for s in site.statements(payload)}
        assert {"events", "http", "server", "uwsgi_pass", "uwsgi_temp_path"} <= names
        assert ("uwsgi_param" in names) == (not params)
    proxied = site.default_server("80", site.Upstream("http", "unix:/run/a.sock"), "")
    assert "proxy_pass http://unix:/run/a.sock:;" in proxied
    included = site.main_conf(body=site.site_include("/etc/my site"), origin="x",
                              mime_types="/etc/nginx/mime.types")
    assert 'include "/etc/my site";' in included
    assert "include /etc/nginx/mime.types;" in included


# -- fnud.toml ---------------------------------------------------------------------------


def test_fnud_toml_parses_with_every_key(tmp_path: Path) -> None:
    spec = toml.TomlSpec(
        origin_ini="/home/flaskproject/uwsgi.ini", site="/etc/nginx/sites-enabled/mysite",
        runtime_dir="/run/fnud", log_dir="/var/log/fnud", user="www-data",
        binary="/usr/bin/uwsgi", binary_why="Debian's uwsgi", python="/srv/venv/bin/python",
        health_url="http://127.0.0.1:80/",
    )
    text = toml.render(spec)
    config = parse_config(text, tmp_path / "fnud.toml")
    assert config.fnud.runtime_dir == Path("/run/fnud")
    assert config.fnud.log_dir == Path("/var/log/fnud")
    assert config.fnud.user == "www-data"
    assert config.uwsgi.ini == tmp_path / "uwsgi.ini"
    assert (config.uwsgi.binary, config.uwsgi.python) == ("/usr/bin/uwsgi", "/srv/venv/bin/python")
    assert config.nginx.conf == tmp_path / "nginx.conf"
    assert config.health.url == "http://127.0.0.1:80/"
    assert all("#" in line for line in text.splitlines() if "=" in line)  # each key commented
    bare = toml.render(toml.TomlSpec("/a\n.ini", "", "run", "log", "", "", "", "", "http://h:1/"))
    config = parse_config(bare, tmp_path / "fnud.toml")
    assert (config.fnud.runtime_dir, config.fnud.user) == (tmp_path / "run", "")
    assert config.uwsgi.binary == config.uwsgi.python == ""


def test_how_to_stop_the_old_stack() -> None:
    assert report.stop_hint("nginx", 10, nginx_unit=True, pidfile="") == (
        "systemctl disable --now nginx"
    )
    assert report.stop_hint("nginx", 10, nginx_unit=False, pidfile="") == (
        "kill -QUIT 10 (its graceful stop)"
    )
    assert report.stop_hint("uwsgi", 11, nginx_unit=True, pidfile="/srv/uwsgi.pid") == (
        "uwsgi --stop /srv/uwsgi.pid (or kill -INT 11)"
    )
    assert report.stop_hint("uwsgi", 11, nginx_unit=False, pidfile="") == "kill -INT 11"
    assert report.next_commands(Path("/srv/fnud/fnud.toml"))[1:] == [
        "  fnud -c /srv/fnud/fnud.toml check",
        "  fnud -c /srv/fnud/fnud.toml start",
        "  sudo fnud -c /srv/fnud/fnud.toml systemd-unit --install",
    ]
