"""`fnud status` rendered from the daemon's answer (no daemon here)."""

from __future__ import annotations

from supervisor.cli.statusview import render_status


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
