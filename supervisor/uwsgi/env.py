"""The environment uWSGI (and what reads its ini as uWSGI will) gets: every child's,
without ``UWSGI_*``, which uWSGI reads as options."""

from __future__ import annotations

from collections.abc import Mapping

from supervisor.common import childenv

PREFIXES = ("UWSGI_",)


def child_env(environ: Mapping[str, str]) -> dict[str, str]:
    return childenv.child_env(environ, PREFIXES)
