"""A throwaway stack's uWSGI ini or gunicorn conf, its nginx.conf, and how to find its
processes: shared by the tests and the bench.

Both serve a copy of example/app.py from ``<root>/app`` on ports picked at runtime.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import psutil


class StackLayout:
    """Where a throwaway stack's files are, below its ``root``."""

    root: Path

    @property
    def toml(self) -> Path:
        return self.root / "fnud.toml"

    @property
    def ini(self) -> Path:
        return self.root / "uwsgi.ini"

    @property
    def gunicorn_conf(self) -> Path:
        return self.root / "gunicorn.conf.py"

    @property
    def nginx_conf(self) -> Path:
        return self.root / "nginx.conf"

    @property
    def app(self) -> Path:
        return self.root / "app" / "app.py"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def log(self) -> Path:
        return self.root / "log"


UWSGI_INI = """\
[uwsgi]
socket = 127.0.0.1:{uwsgi_port}
chdir = %dapp
module = app
callable = app
processes = {processes}
threads = {threads}
master = true
lazy-apps = {lazy}
need-app = true
die-on-term = true
vacuum = true
disable-logging = true
{extra_ini}
"""

NGINX_CONF = """\
worker_processes 2;
pid nginx.pid;
events {{
    worker_connections 1024;
}}
http {{
    access_log off;
    client_body_temp_path tmp/client_body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    server {{
        listen 127.0.0.1:{http_port};
        location / {{
            include /etc/nginx/uwsgi_params;
            uwsgi_pass 127.0.0.1:{uwsgi_port};
            uwsgi_read_timeout 120s;
        }}
    }}
}}
"""


GUNICORN_NGINX_CONF = """\
worker_processes 2;
pid nginx.pid;
events {{
    worker_connections 1024;
}}
http {{
    access_log off;
    client_body_temp_path tmp/client_body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    server {{
        listen 127.0.0.1:{http_port};
        location / {{
            proxy_pass http://127.0.0.1:{app_port};
            proxy_set_header Host $host;
            proxy_read_timeout 120s;
        }}
    }}
}}
"""

GUNICORN_CONF = """\
# a user's gunicorn.conf.py: fnud runs it in its wrapper config
timeout = 30
graceful_timeout = 10
{extra}
"""


def gunicorn_nginx_conf(http_port: int, app_port: int) -> str:
    """nginx proxying HTTP to gunicorn's bind."""
    return GUNICORN_NGINX_CONF.format(http_port=http_port, app_port=app_port)


def gunicorn_conf(extra: str = "") -> str:
    return GUNICORN_CONF.format(extra=extra)


def uwsgi_ini(
    uwsgi_port: int, processes: int, threads: int = 2, extra_ini: str = "", lazy: bool = True
) -> str:
    """``lazy``: lazy-apps, which chain reloads need; generations preload (workers fork
    the vetted code)."""
    return UWSGI_INI.format(
        uwsgi_port=uwsgi_port, processes=processes, threads=threads, extra_ini=extra_ini,
        lazy=str(lazy).lower(),
    )


def nginx_conf(http_port: int, uwsgi_port: int) -> str:
    return NGINX_CONF.format(http_port=http_port, uwsgi_port=uwsgi_port)


def processes_under(roots: Sequence[Path]) -> list[psutil.Process]:
    """Live processes whose cwd or command line lies under one of ``roots``.

    nginx and the app server run with their cwd in the stack dir (orphaned workers keep
    it), and the daemon's command line names the stack's fnud.toml; other stacks running
    at the same time on the machine are not counted.
    """
    prefixes = tuple(str(root) for root in roots)
    if not prefixes:
        return []
    found = []
    for proc in psutil.process_iter(["cmdline", "cwd", "status"]):
        if proc.pid == os.getpid() or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        cwd = proc.info["cwd"] or ""
        cmdline = " ".join(proc.info["cmdline"] or [])
        if cwd.startswith(prefixes) or any(p in cmdline for p in prefixes):
            found.append(proc)
    return found
