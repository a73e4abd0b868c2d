"""The environment every child of fnud gets (nginx, the app server, the app preflight,
nginx -t).

systemd's variables are for fnud alone (an app server that speaks sd_notify itself
would confuse systemd; one that takes sockets by LISTEN_FDS would take them from a
wrong pid). Each app server's adapter adds the variables that would silently
reconfigure it.
"""

from __future__ import annotations

from collections.abc import Mapping

SCRUBBED_PREFIXES = ("WATCHDOG_",)
SCRUBBED_NAMES = frozenset({"NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"})


def child_env(environ: Mapping[str, str], also: tuple[str, ...] = ()) -> dict[str, str]:
    """``environ`` without systemd's variables, nor those starting with ``also``."""
    prefixes = SCRUBBED_PREFIXES + also
    return {
        key: value
        for key, value in environ.items()
        if key not in SCRUBBED_NAMES and not key.startswith(prefixes)
    }
