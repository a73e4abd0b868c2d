"""fnud.toml's [gunicorn] section: its rules (file:line errors, no OS calls) and its bind
read as an address."""

from __future__ import annotations

import ast
import re

from supervisor.common.ports import Address, parse_host_port
from supervisor.config.errors import ConfigError, locate
from supervisor.config.schema import Config

_MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
APP_HINT = 'e.g. app = "app:app" (module app.py, callable app) or "pkg:create_app()"'


def parse_bind(value: str) -> Address | str | None:
    """``HOST:PORT`` -> an Address; ``unix:/path`` -> the path; None when fnud cannot
    hold it (a relative or abstract unix socket, ``fd://``, no port)."""
    if value.startswith("unix:"):
        path = value[5:]
        return path if path.startswith("/") else None
    if "://" in value:
        return None
    address = parse_host_port(value)
    return address if address is not None and 0 < address.port < 65536 else None


def app_problem(app: str) -> str:
    """Why gunicorn would not take ``module:callable`` ('' when it would)."""
    if not app:
        return "[gunicorn] app is required"
    module, _, obj = app.partition(":")
    if not _MODULE_RE.match(module):
        return f"[gunicorn] app: '{module}' is not a module name"
    if not obj:
        return ""  # gunicorn looks for `application`
    try:
        expression = ast.parse(obj, mode="eval").body
    except SyntaxError:
        return f"[gunicorn] app: '{obj}' is neither a name nor a call"
    if isinstance(expression, ast.Name):
        return ""
    if isinstance(expression, ast.Call) and isinstance(expression.func, ast.Name):
        try:
            for arg in [*expression.args, *(k.value for k in expression.keywords)]:
                ast.literal_eval(arg)
        except ValueError:
            return f"[gunicorn] app: the arguments of '{obj}' must be literals"
        return ""
    return f"[gunicorn] app: '{obj}' is neither a name nor a call of one"


def validate_gunicorn(config: Config, text: str, where: str) -> None:
    """The [gunicorn] rules fnud.toml alone can tell (raises ConfigError)."""
    if config.server != "gunicorn":
        return
    section = config.gunicorn
    if config.fnud.balancer:
        raise ConfigError(
            where, locate(text, "gunicorn", None),
            "[fnud] balancer = true runs no app server, but [gunicorn] is set",
            "remove [gunicorn], or set balancer = false",
        )
    problem = app_problem(section.app)
    if problem:
        raise ConfigError(where, locate(text, "gunicorn", "app"), problem, APP_HINT)
    if parse_bind(section.bind) is None:
        raise ConfigError(
            where, locate(text, "gunicorn", "bind"),
            f"[gunicorn] bind must be HOST:PORT or unix:/absolute/path, got '{section.bind}'",
            'e.g. bind = "127.0.0.1:8001", and proxy_pass http://127.0.0.1:8001; in nginx.conf',
        )
    if section.reload != "generation":
        raise ConfigError(
            where, locate(text, "gunicorn", "reload"),
            f"[gunicorn] reload must be \"generation\" (the only mode), got '{section.reload}'",
        )
