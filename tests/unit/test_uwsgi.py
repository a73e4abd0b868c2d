"""Unit tests of the pure pieces: ini parsing, magic variables, states, chain tracking."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.appserver.workers import Stats
from supervisor.common.files import write_atomic
from supervisor.uwsgi import driver as uwsgi
from supervisor.uwsgi import options
from supervisor.uwsgi.fifo import write_fifo
from supervisor.uwsgi.ini import parse_ini
from supervisor.uwsgi.render import render_ini
from supervisor.uwsgi.stats import ChainProgress, parse_stats, request_status


def _stats(*workers: tuple[int, int, bool, int]) -> Stats:
    return parse_stats(
        {
            "pid": 1,
            "workers": [
                {"id": i, "pid": p, "accepting": int(a), "apps": [{}] * n, "status": "idle"}
                for i, p, a, n in workers
            ],
        }
    )


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
    rendered = render_ini(text, Path("/srv/x/uwsgi.ini")).split("\n")
    assert rendered[1] == "chdir = /srv/x/src"
    assert rendered[2].startswith("; [fnud: handled by fnud] daemonize")
    assert rendered[3].startswith("; [fnud: handled by fnud] stats")
    assert rendered[4].startswith("; [fnud: handled by fnud] touch-chain-reload")
    assert rendered[5] == "master = true"
    assert len(rendered) == len(text.split("\n"))


def test_fnud_fifo_comes_before_the_users_ini() -> None:
    argv = uwsgi.argv("uwsgi", Path("/r/f"), Path("/r/u.ini"), Path("/r/s"), Path("/l/u.log"))
    assert argv.index("--master-fifo") < argv.index("--ini")


def test_chain_progress_is_done_only_when_every_worker_is_new_and_ready() -> None:
    progress = ChainProgress.begin(_stats((1, 10, True, 1), (2, 11, True, 1)))
    mid = _stats((1, 20, True, 1), (2, 11, True, 1))
    assert [w.pid for w in progress.newly_replaced(mid)] == [20]
    assert not progress.done(mid)
    assert [w.id for w in progress.stuck(mid)] == [2]
    loading = _stats((1, 20, True, 1), (2, 21, False, 0))
    assert not progress.done(loading) and progress.newly_replaced(loading) == []
    done = _stats((1, 20, True, 1), (2, 21, True, 1))
    assert progress.done(done) and [w.pid for w in progress.newly_replaced(done)] == [21]


def test_the_master_is_told_no_uid_it_runs_as_the_user_from_its_exec() -> None:
    """--uid would mean a root master parsing the ini (and its *-as-root options) first."""
    argv = uwsgi.argv("uwsgi", Path("/r/f"), Path("/r/u.ini"), Path("/r/s"), None)
    assert "--uid" not in argv and "--gid" not in argv
    assert argv.index("--master-fifo") < argv.index("--ini")


def test_fifo_writer_never_follows_a_link(tmp_path: Path) -> None:
    import asyncio

    target = tmp_path / "passwd"
    target.write_text("root:x:0:0\n")
    link = tmp_path / "uwsgi.fifo"
    link.symlink_to(target)
    with pytest.raises(OSError):
        asyncio.run(write_fifo(link, "c", timeout=0.2))
    regular = tmp_path / "not-a-fifo"
    regular.write_text("x")
    with pytest.raises(OSError, match="not the master's fifo"):
        asyncio.run(write_fifo(regular, "c", timeout=0.2))
    assert target.read_text() == "root:x:0:0\n" and regular.read_text() == "x"


def test_rendered_ini_replaces_a_planted_link_instead_of_writing_through_it(
    tmp_path: Path,
) -> None:
    target = tmp_path / "secret"
    target.write_text("do not touch")
    rendered = tmp_path / "uwsgi.ini"
    rendered.symlink_to(target)
    write_atomic(rendered, b"[uwsgi]\n", 0o644)
    assert target.read_text() == "do not touch"
    assert not rendered.is_symlink() and rendered.read_text() == "[uwsgi]\n"


def test_request_status_reads_uwsgi_request_lines() -> None:
    line = ("[pid: 12|app: 0|req: 3/9] 127.0.0.1 () {34 vars in 401 bytes} "
            "[Wed Dec  2 09:30:00 2026] GET /boom => generated 265 bytes in 3 msecs "
            "(HTTP/1.1 500) 2 headers in 99 bytes (1 switches on core 0)")
    assert request_status(line) == (12, 500)
    sneaky = line.replace("/boom", "/x(HTTP/1.1 503)").replace("HTTP/1.1 500", "HTTP/1.1 200")
    assert request_status(sneaky) == (12, 200)  # the URI comes first: the last one counts
    assert request_status("*** Starting uWSGI 2.0.31 ***") is None
    assert request_status("[pid: 1|app: 0|req: 1/1] a custom log-format") is None
