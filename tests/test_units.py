"""Unit tests of the pure pieces: ini parsing, magic variables, states, chain tracking."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.common.childenv import child_env
from supervisor.common.ports import Address, parse_nginx_listen, parse_uwsgi_socket
from supervisor.config.client import config_path
from supervisor.config.parse import ConfigError, parse_config
from supervisor.process.states import TRANSITIONS, State, TransitionError, check_transition
from supervisor.uwsgi import driver as uwsgi
from supervisor.uwsgi import options
from supervisor.uwsgi.ini import parse_ini
from tests import configdoc


def test_ini_keeps_inline_comments_like_uwsgi() -> None:
    ini = parse_ini("[uwsgi]\nchdir = /srv/app   # project dir\n; comment\n# also\n")
    assert ini.value("chdir") == "/srv/app   # project dir"
    assert ini.get("chdir").line == 2  # type: ignore[union-attr]


def test_ini_reads_only_the_uwsgi_section_and_last_value_wins() -> None:
    ini = parse_ini("[other]\nx = 1\n[uwsgi]\nx = 2\nx = 3\nmaster = false\nlazy-apps\n")
    assert ini.value("x") == "3" and [o.value for o in ini.all("x")] == ["2", "3"]
    assert not options.flag(ini, options.MASTER) and options.flag(ini, options.LAZY_APPS)


@given(st.text(max_size=300))
@settings(max_examples=200, deadline=None)
def test_ini_parser_never_crashes(text: str) -> None:
    parse_ini(text)


def test_magic_variables_expand_for_the_original_file() -> None:
    ini = Path("/etc/app/site.ini")
    assert options.expand_magic("%dapp", ini) == "/etc/app/app"
    expanded = options.expand_magic("%p|%s|%n|%e|%c|%%", ini)
    assert expanded == "/etc/app/site.ini|site.ini|site|.ini|app|%"
    assert options.expand_magic("$(HOME)/x", ini) == "$(HOME)/x"  # left to uWSGI


def test_rendered_ini_comments_out_what_fnud_takes_over_and_keeps_lines() -> None:
    text = (
        "[uwsgi]\nchdir = %dsrc\ndaemonize = /tmp/log\nstats = 127.0.0.1:9191\n"
        "touch-chain-reload = true\nmaster = true\n"
    )
    rendered = uwsgi.render_ini(text, Path("/srv/x/uwsgi.ini")).split("\n")
    assert rendered[1] == "chdir = /srv/x/src"
    assert rendered[2].startswith("; [fnud: handled by fnud] daemonize")
    assert rendered[3].startswith("; [fnud: handled by fnud] stats")
    assert rendered[4].startswith("; [fnud: handled by fnud] touch-chain-reload")
    assert rendered[5] == "master = true"
    assert len(rendered) == len(text.split("\n"))


def test_fnud_fifo_comes_before_the_users_ini() -> None:
    argv = uwsgi.argv("uwsgi", Path("/r/f"), Path("/r/u.ini"), Path("/r/s"), Path("/l/u.log"))
    assert argv.index("--master-fifo") < argv.index("--ini")


def test_child_env_is_scrubbed() -> None:
    env = child_env(
        {"PATH": "/bin", "NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "1", "UWSGI_PROCESSES": "9"}
    )
    assert env == {"PATH": "/bin"}


def _stats(*workers: tuple[int, int, bool, int]) -> uwsgi.Stats:
    return uwsgi.parse_stats(
        {
            "pid": 1,
            "workers": [
                {"id": i, "pid": p, "accepting": int(a), "apps": [{}] * n, "status": "idle"}
                for i, p, a, n in workers
            ],
        }
    )


def test_chain_progress_is_done_only_when_every_worker_is_new_and_ready() -> None:
    progress = uwsgi.ChainProgress.begin(_stats((1, 10, True, 1), (2, 11, True, 1)))
    mid = _stats((1, 20, True, 1), (2, 11, True, 1))
    assert [w.pid for w in progress.newly_replaced(mid)] == [20]
    assert not progress.done(mid)
    assert [w.id for w in progress.stuck(mid)] == [2]
    loading = _stats((1, 20, True, 1), (2, 21, False, 0))
    assert not progress.done(loading) and progress.newly_replaced(loading) == []
    done = _stats((1, 20, True, 1), (2, 21, True, 1))
    assert progress.done(done) and [w.pid for w in progress.newly_replaced(done)] == [21]


def test_transition_table_covers_every_state_and_rejects_illegal_moves() -> None:
    assert set(TRANSITIONS) == set(State)
    check_transition("x", State.STOPPED, State.STARTING)
    with pytest.raises(TransitionError):
        check_transition("x", State.STOPPED, State.RUNNING)
    with pytest.raises(TransitionError):
        check_transition("x", State.STOPPING, State.RUNNING)


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
    assert parse_uwsgi_socket(":3031") == Address("0.0.0.0", 3031)
    assert parse_uwsgi_socket("127.0.0.1:3031") == Address("127.0.0.1", 3031)
    assert parse_uwsgi_socket("/run/app.sock") is None


def test_configured_user_goes_after_the_users_ini() -> None:
    argv = uwsgi.argv(
        "uwsgi", Path("/r/f"), Path("/r/u.ini"), Path("/r/s"), None, "www-data", "www-data"
    )
    assert argv.index("--uid") > argv.index("--ini")
    assert argv[argv.index("--uid") + 1] == "www-data"


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


def test_fifo_writer_never_follows_a_link(tmp_path: Path) -> None:
    import asyncio

    target = tmp_path / "passwd"
    target.write_text("root:x:0:0\n")
    link = tmp_path / "uwsgi.fifo"
    link.symlink_to(target)
    with pytest.raises(OSError):
        asyncio.run(uwsgi.write_fifo(link, "c", timeout=0.2))
    regular = tmp_path / "not-a-fifo"
    regular.write_text("x")
    with pytest.raises(OSError, match="not a fifo"):
        asyncio.run(uwsgi.write_fifo(regular, "c", timeout=0.2))
    assert target.read_text() == "root:x:0:0\n" and regular.read_text() == "x"


def test_rendered_ini_replaces_a_planted_link_instead_of_writing_through_it(
    tmp_path: Path,
) -> None:
    target = tmp_path / "secret"
    target.write_text("do not touch")
    rendered = tmp_path / "uwsgi.ini"
    rendered.symlink_to(target)
    uwsgi.write_private(rendered, b"[uwsgi]\n", 0o644)
    assert target.read_text() == "do not touch"
    assert not rendered.is_symlink() and rendered.read_text() == "[uwsgi]\n"


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


def test_documented_key_table_is_generated_from_config() -> None:
    documented = configdoc.doc_table(configdoc.DOC.read_text(encoding="utf-8"))
    assert documented == configdoc.table(), (
        "docs/configuration.md's fnud.toml keys differ from the config schema "
        "(keys, defaults or comments): run python -m tests.configdoc"
    )


def test_the_key_table_is_documented_in_one_place() -> None:
    for doc in [configdoc.ROOT / "README.md", *sorted((configdoc.ROOT / "docs").glob("*.md"))]:
        if doc != configdoc.DOC:
            assert configdoc.BEGIN not in doc.read_text(encoding="utf-8"), doc


def test_the_key_table_check_notices_a_change() -> None:
    """A key, a default or a comment that differs fails the comparison above."""
    text = configdoc.DOC.read_text(encoding="utf-8")
    block = configdoc.doc_table(text)
    for old, new in [
        ("stop_timeout = 20.0", "stop_timeout = 21.0"),
        ("settle = 10.0", "settel = 10.0"),
        ("# graceful stop budget", "# stop budget"),
    ]:
        assert old in block, old
        changed = text.replace(block, block.replace(old, new, 1))
        assert configdoc.doc_table(changed) != configdoc.table(), new
    with pytest.raises(ValueError, match="appears 2 times"):
        configdoc.doc_table(text + configdoc.BEGIN)


def test_documented_key_table_is_a_config_of_defaults() -> None:
    text = configdoc.table().removeprefix("```toml\n").removesuffix("\n```")
    path = Path("/c/fnud.toml")
    assert parse_config(text, path) == parse_config("", path)


def _user_docs() -> list[Path]:
    root = configdoc.ROOT
    docs = sorted((root / "docs").glob("*.md"))
    return [root / "README.md", *docs, root / "deploy" / "README.md"]


def _anchor(heading: str) -> str:
    """GitHub's anchor for a markdown heading."""
    import re

    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def test_relative_links_in_the_docs_resolve() -> None:
    """Every relative link in README.md, docs/ and deploy/README.md names a file (and, with
    #anchor into a markdown file, a heading) that exists."""
    import re

    link = re.compile(r"\]\(([^)\s]+)\)")
    for doc in _user_docs():
        text = re.sub(r"```.*?```", "", doc.read_text(encoding="utf-8"), flags=re.S)
        for target in link.findall(text):
            if re.match(r"[a-z]+:", target):
                continue  # http:, https:, mailto:
            path, _, anchor = target.partition("#")
            file = (doc.parent / path).resolve() if path else doc
            assert file.exists(), f"{doc.name}: {target}: no such file"
            if anchor and file.suffix == ".md":
                headings = re.findall(r"^#+ (.*)$", file.read_text(encoding="utf-8"), flags=re.M)
                assert anchor in {_anchor(h) for h in headings}, f"{doc.name}: {target}: no heading"


def test_key_comments_come_from_the_field_line() -> None:
    source = "class S:\n    a: int = 1  # one\n    b: tuple[int, ...] = (\n        2,\n    )  # 2\n"
    assert configdoc.field_comments(source) == {("S", "a"): "one", ("S", "b"): "2"}
