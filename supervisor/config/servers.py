"""The app servers fnud can run, each with a section of its own in fnud.toml, and how
users know them (no imports: the thin CLI reads this)."""

from __future__ import annotations

APP_SERVERS = ("uwsgi", "gunicorn")
DISPLAY = {"uwsgi": "uWSGI", "gunicorn": "gunicorn"}
