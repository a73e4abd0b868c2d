"""The fnud.toml ``fnud init`` writes: the keys of supervisor.config, each commented. Pure."""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class TomlSpec:
    origin_ini: str  # the user's ini the new one was made from
    site: str  # the nginx site file included unchanged ("" for a generated server block)
    runtime_dir: str
    log_dir: str
    user: str  # "" leaves [fnud] user out
    binary: str  # [uwsgi] binary ("" leaves it out: the uwsgi beside fnud's python)
    binary_why: str
    python: str  # [uwsgi] python ("" leaves it out)
    health_url: str


def string(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(value, ensure_ascii=False)


def comment(text: str) -> str:
    """Text for a ``#`` comment: one line."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def _key(key: str, value: str, why: str) -> str:
    line = f"{key} = {string(value)}"
    return f"{line:<34} # {comment(why)}\n"


def render(spec: TomlSpec) -> str:
    out = [
        "# " + comment(f"Written by fnud init from {spec.origin_ini}"
                       + (f" and {spec.site}" if spec.site else "")) + ".\n",
        "# Relative paths are relative to this file's directory. All keys: README,\n",
        "# Configuration section.\n\n",
        "[fnud]\n",
        _key("runtime_dir", spec.runtime_dir, "control socket, lock, fifo, stats (0700)"),
        _key("log_dir", spec.log_dir, "fnud.log, uwsgi.log, nginx.log"),
    ]
    if spec.user:
        out.append(_key("user", spec.user, "as root: uWSGI's and nginx's workers run as this"))
    out += ["\n[uwsgi]\n", _key("ini", "uwsgi.ini", f"made by fnud init from {spec.origin_ini}")]
    if spec.binary:
        out.append(_key("binary", spec.binary, spec.binary_why))
    if spec.python:
        out.append(_key("python", spec.python, "the app's interpreter (the app preflight)"))
    site = f"includes {spec.site} unchanged" if spec.site else "passes every request to uWSGI"
    out += [
        "\n[nginx]\n",
        _key("conf", "nginx.conf", site),
        "\n[health]\n",
        _key("url", spec.health_url, "a request through nginx that must answer 2xx/3xx"),
    ]
    return "".join(out)
