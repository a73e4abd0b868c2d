"""Balancer mode (`[fnud] balancer = true`, or the older `[uwsgi] enabled = false`): fnud
runs nginx alone, in front of an app stack, with the same gate, status and stop. (The
fleet test bed uses it across network namespaces: tests/fleet/test_fleet.py.)"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from supervisor.config.parse import parse_config
from testkit.stackdir import StackDir, wait_for

BALANCER_CONF = """\
worker_processes 2;
pid nginx.pid;
events {{
    worker_connections 256;
}}
http {{
    access_log off;
    client_body_temp_path tmp/client_body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    upstream apps {{
        server 127.0.0.1:{app_port} max_fails=1 fail_timeout=5s;{extra}
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://apps;
            proxy_next_upstream error timeout http_502 http_503;
        }}
    }}
}}
"""

BALANCER_TOML = """\
[fnud]
runtime_dir = "run"
log_dir = "log"
stop_timeout = 10.0
allow_root = true
{spelling}
[nginx]
conf = "nginx.conf"

[health]
url = "http://127.0.0.1:{port}/health"
interval = 0
"""


SPELLINGS = {"balancer": "balancer = true\n", "enabled": "\n[uwsgi]\nenabled = false\n"}


def balancer_in(stack: StackDir, app: StackDir, spelling: str = "balancer") -> StackDir:
    """Turn ``stack``'s dir into a balancer in front of ``app``: no ini, nginx alone."""
    stack.ini.unlink()
    stack.toml.write_text(
        BALANCER_TOML.format(port=stack.http_port, spelling=SPELLINGS[spelling])
    )
    stack.nginx_conf.write_text(
        BALANCER_CONF.format(port=stack.http_port, app_port=app.http_port, extra="")
    )
    return stack


def test_enabled_false_parses_and_a_missing_section_keeps_uwsgi() -> None:
    off = parse_config("[uwsgi]\nenabled = false\n", Path("/etc/fnud/fnud.toml"))
    assert off.uwsgi.enabled is False
    assert parse_config("", Path("/etc/fnud/fnud.toml")).uwsgi.enabled is True


@pytest.mark.parametrize("spelling", list(SPELLINGS))
def test_balancer_mode_runs_nginx_alone(
    stack_factory: Callable[..., StackDir], spelling: str
) -> None:
    app = stack_factory()
    app.start()
    lb = balancer_in(stack_factory(), app, spelling)
    check = lb.fnud("check")
    assert check.returncode == 0, check.stdout + check.stderr
    older = "[uwsgi] enabled = false is the older spelling of balancer mode"
    assert (older in check.stdout) == (spelling == "enabled"), check.stdout
    lb.start()
    assert set(lb.programs()) == {"nginx"}
    with urllib.request.urlopen(lb.url + "/", timeout=10) as response:
        assert response.read() == b"Hello from fnud\n"
    workers = lb.worker_pids("nginx")
    # drain-like change of the upstream: gated nginx reload, new workers
    lb.nginx_conf.write_text(BALANCER_CONF.format(
        port=lb.http_port, app_port=app.http_port,
        extra="\n        server 127.0.0.1:9 down;",
    ))
    reloaded = lb.fnud("reload", "--nginx")
    assert reloaded.returncode == 0, reloaded.stdout + reloaded.stderr
    wait_for(lambda: not lb.worker_pids("nginx") & workers, message="old workers to retire")
    lb.nginx_conf.write_text("http { bad }\n")
    refused = lb.fnud("reload")
    assert refused.returncode == 1
    assert lb.serving()
    stopped = lb.fnud("stop")
    assert stopped.returncode == 0
    wait_for(lambda: not lb.serving(), message="the balancer to stop")
    assert app.serving()
