"""fnud.socket: systemd binds nginx's listening addresses and hands them to fnud, so that
fnud, nginx and the app server can all run as one unprivileged user (rootless mode)."""

from __future__ import annotations

from collections.abc import Iterable

TEMPLATE = """\
# fnud.socket: systemd binds nginx's listening addresses (ports below 1024 included) and
# hands them to fnud.service, which then needs no root: with User= in fnud.service, fnud,
# nginx and the app server all run as that user. fnud matches each socket to a `listen`
# of your nginx.conf by its address. Made by `fnud systemd-unit --socket` for {config}.

[Unit]
Description=fnud: nginx's listening sockets for {config}

[Socket]
{listens}
# a restarted fnud.service gets the same sockets: clients wait, they are not refused
FileDescriptorName=nginx

[Install]
WantedBy=sockets.target
"""


def render_socket(config: str, addresses: Iterable[str]) -> str:
    """The socket unit for nginx's ``addresses`` (``HOST:PORT``, ``[V6]:PORT``)."""
    listens = "\n".join(f"ListenStream={address}" for address in addresses)
    if not listens:
        listens = "# nginx.conf has no inet listen fnud could hold"
    return TEMPLATE.format(config=config, listens=listens)
