"""The environment every child of fnud gets (nginx, uWSGI, the app preflight, nginx -t).

systemd's variables are for fnud alone (uWSGI speaks sd_notify itself and would confuse
systemd), and ``UWSGI_*`` variables would silently reconfigure uWSGI.
"""

from __future__ import annotations

from collections.abc import Mapping

SCRUBBED_PREFIXES = ("UWSGI_", "WATCHDOG_")
SCRUBBED_NAMES = frozenset({"NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"})


def child_env(environ: Mapping[str, str]) -> dict[str, str]:
    return {
        key: value
        for key, value in environ.items()
        if key not in SCRUBBED_NAMES and not key.startswith(SCRUBBED_PREFIXES)
    }
