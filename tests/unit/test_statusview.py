"""What the CLI prints of the daemon's texts (no daemon here): `fnud status`, the
progress and result of a reload, errors."""

from __future__ import annotations

import pytest

from supervisor.cli.basics import fail
from supervisor.cli.statusview import render_status
from supervisor.common.text import for_terminal


def test_fnud_status_prints_a_reloads_texts_on_one_line() -> None:
    """A [watch] reload's reason names the files saved: a name with an escape sequence or
    a byte that is not UTF-8 went to the terminal as it was (a raw 0xff, ESC[31m)."""
    text = render_status({
        "daemon": {"pid": 7, "phase": "running", "config": "/etc/fnud/fnud.toml"},
        "programs": {"uwsgi": {"state": "FATAL", "pid": 0, "last_exit": "boom\x1b[2J\r"}},
        "last_reload": {"result": "ok", "duration": 1.5, "message": "3 workers replaced",
                        "reason": "changed: /app/\udcff\x1b[31m\n.py"},
    })
    lines = text.splitlines()
    assert lines[-1] == (
        "last reload: ok (1.5s, changed: /app/\\udcff\\x1b[31m\\n.py): 3 workers replaced"
    )
    assert lines[3].endswith("boom\\x1b[2J\\r")
    text.encode("ascii")  # nothing a terminal would act on, nothing stdout cannot encode


def test_a_reloads_progress_and_errors_keep_their_lines_but_not_escape_sequences(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The progress of `fnud reload` and a refused reload's reason (nginx -t's output, an
    import's traceback) went to the terminal as they came, escape sequences included."""
    traceback = "app.py:3: SyntaxError\n\tx = \x1b[2J(\n\udcff"
    assert for_terminal(traceback) == "app.py:3: SyntaxError\n\tx = \\x1b[2J(\n\\udcff"
    with pytest.raises(SystemExit) as exited:
        fail(f"reload refused: {traceback}")
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("fnud: reload refused: app.py:3: SyntaxError\n\tx = \\x1b[2J(")
    err.encode("ascii")
