"""Hypothesis strategies for broken inputs: uWSGI ini text, fnud.toml documents and
nginx.conf text built from pieces that look like the real thing (so that the checks get
past the first syntax error), plus raw text and bytes. Shared by the unit fuzz tests and
the stack test that runs the real `fnud check` on a few of them; frames for the control
socket, in-process and against a real daemon.

``examples(n)``: the number of examples a fuzz test runs; ``FNUD_FUZZ_SCALE=20`` in the
environment multiplies it for a deeper run by hand.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any

from hypothesis import strategies as st

from supervisor.control import wire


def examples(count: int) -> int:
    return max(1, int(count * float(os.environ.get("FNUD_FUZZ_SCALE", "1"))))


# -- uwsgi.ini --------------------------------------------------------------------------

_KEYS = st.sampled_from([
    "socket", "http-socket", "uwsgi-socket", "https", "chdir", "module", "wsgi-file", "mount",
    "master", "lazy-apps", "stats", "pidfile", "pidfile2", "master-fifo", "daemonize",
    "touch-chain-reload", "virtualenv", "home", "pythonpath", "protocol", "ini", "base",
    "shared-socket", "env",
])

_PIECES = st.sampled_from([
    "%d", "%(base)", "%(chdir)", "%(", "@(x)", "$(HOME)", "$(NOPE", "%t", "%", "#", " ;",
    ":", "127.0.0.1", ":8001", "localhost:", "[::1]:", "/", "..", "app", "true", "=0", ",",
    "²", "\0", "\t", "[uwsgi]", "\udcff", "x" * 300,
])

_VALUES = st.lists(st.one_of(_PIECES, st.text(max_size=8)), max_size=6).map("".join)

_INI_LINES = st.one_of(
    st.tuples(_KEYS, _VALUES).map(lambda kv: f"{kv[0]} = {kv[1]}"),
    st.sampled_from(["[uwsgi]", "[app]", "; comment", "   # comment", "[", "="]),
    st.text(max_size=40),
)

#: text for uwsgi.ini (write it with ``encode("utf-8", "surrogateescape")``)
INI_TEXT = st.one_of(st.text(), st.lists(_INI_LINES, max_size=12).map("\n".join))

# -- fnud.toml --------------------------------------------------------------------------

_TOML_VALUES = st.one_of(
    st.text(max_size=12), st.sampled_from(["~", "~nosuchuser/x", "\0", "uwsgi.ini", "/", "."]),
    st.integers(), st.floats(), st.booleans(), st.lists(st.text(max_size=5), max_size=3),
)

_TOML_KEYS = st.sampled_from([
    "runtime_dir", "log_dir", "stop_timeout", "ini", "binary", "python", "conf", "prefix",
    "url", "initial", "max", "paths", "include", "enabled", "debounce_ms", "bogus",
])

_TOML_DOCS = st.dictionaries(
    st.sampled_from(["fnud", "uwsgi", "nginx", "health", "backoff", "watch", "nope"]),
    st.dictionaries(_TOML_KEYS, _TOML_VALUES, max_size=4), max_size=4,
)


def to_toml(doc: dict[str, dict[str, object]]) -> str:
    lines = []
    for section, table in doc.items():
        lines.append(f"[{section}]")
        for key, value in table.items():
            if isinstance(value, float) and value != value:
                rendered = "nan"
            elif isinstance(value, float) and value in (float("inf"), float("-inf")):
                rendered = "inf" if value > 0 else "-inf"
            else:
                rendered = json.dumps(value)
            lines.append(f"{key} = {rendered}")
    return "\n".join(lines) + "\n"


#: text for fnud.toml
TOML_TEXT = st.one_of(st.text(), _TOML_DOCS.map(to_toml))

# -- nginx.conf -------------------------------------------------------------------------

_NGINX_NAMES = st.sampled_from([
    "worker_processes", "pid", "user", "daemon", "events", "http", "server", "location",
    "listen", "uwsgi_pass", "proxy_pass", "fastcgi_pass", "scgi_pass", "upstream", "include",
    "error_log", "access_log", "root", "return", "if", "map", "types", "server_name",
    "master_process", "load_module", "content_by_lua_block", "set", "bogus_directive",
])

_NGINX_ARGS = st.sampled_from([
    "2", "auto", "on", "off", "nginx.pid", "/", "nobody", "127.0.0.1:8080", "8080",
    "[::1]:8080", "[::1]:", "*:80", ":", "²", "127.0.0.1:²", "localhost:0", "99999",
    "unix:", "unix:/tmp/x.sock", "unix:rel.sock", "http://", "http://up/", "up",
    "http://127.0.0.1:8001", "http://[::1]", "http://$host", "127.0.0.1:8001", "$var",
    "${x}", "'single quoted'", '"double quoted"', '"unterminated', "'", "\\", "\\;",
    "missing.conf", "missing/*.conf", "/nonexistent/x.conf", "nginx.conf", "*", "~ ^/x",
    "reuseport", "default_server", "200", "\0", "\udcff", "\u00e9", "x" * 2000, "#",
])

_NGINX_STATEMENTS = st.one_of(
    st.tuples(_NGINX_NAMES, st.lists(_NGINX_ARGS, max_size=3)).map(
        lambda d: " ".join([d[0], *d[1]]) + ";"
    ),
    st.tuples(_NGINX_NAMES, st.lists(_NGINX_ARGS, max_size=2)).map(
        lambda d: " ".join([d[0], *d[1]]) + " {"
    ),
    st.sampled_from(["}", "{", ";", "{}", "}}", '"', "'", "# comment", "", "\t", "\r"]),
    st.text(max_size=20),
)

#: text for nginx.conf: statement-like pieces (write with ``encode("utf-8",
#: "surrogateescape")``)
NGINX_TEXT = st.one_of(
    st.text(),
    st.lists(_NGINX_STATEMENTS, max_size=25).map("\n".join),
    st.lists(_NGINX_STATEMENTS, max_size=10).map(" ".join),
)

#: raw bytes for nginx.conf (odd encodings, NULs, a huge file now and then)
NGINX_BYTES = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda b, n: b * n, st.binary(min_size=1, max_size=8), st.integers(1, 100_000)),
    NGINX_TEXT.map(lambda text: text.encode("utf-8", "surrogateescape")),
)

# -- the control protocol ---------------------------------------------------------------

#: frame lengths around the edges
FRAME_LENGTHS = st.one_of(
    st.integers(0, 64), st.sampled_from([wire.MAX_FRAME, wire.MAX_FRAME + 1, 2**32 - 1]),
)

_ARG_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=2), st.integers(),
                                                         max_size=2),
)


def control_messages(
    commands: list[str], arg_names: list[str]
) -> st.SearchStrategy[dict[str, Any]]:
    """Request-like objects: known and unknown commands, args of every JSON type."""
    return st.fixed_dictionaries({}, optional={
        "cmd": st.one_of(st.sampled_from(commands), st.none(), st.integers(),
                         st.text(max_size=8), st.lists(st.none(), max_size=2)),
        "args": st.one_of(
            st.none(), st.text(max_size=3), st.lists(st.integers(), max_size=2),
            st.dictionaries(st.one_of(st.sampled_from(arg_names), st.text(max_size=4)),
                            _ARG_VALUES, max_size=3),
        ),
        "extra": st.integers(),
    })


def _cut(frame: bytes) -> st.SearchStrategy[bytes]:
    return st.integers(0, len(frame) - 1).map(lambda cut: frame[:cut])


def control_frames(messages: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[bytes]:
    """What one client may send: garbage, odd length prefixes, requests whole or cut
    short, bodies nested too deeply to decode."""
    return st.one_of(
        st.binary(max_size=100),
        st.builds(lambda n, b: struct.pack(">I", n) + b, FRAME_LENGTHS, st.binary(max_size=60)),
        messages.map(wire.encode),
        messages.map(wire.encode).flatmap(_cut),
        st.integers(1, 100_000).map(lambda depth: struct.pack(">I", depth) + b"[" * depth),
    )

# -- the status page's HTTP ---------------------------------------------------------------

_PATHS = st.one_of(
    st.sampled_from([
        "/", "/status.json", "/history.json", "/metrics", "/reload", "/rollback",
        "/reload?x=1", "/status.json?%00", "/%72eload", "/%2e%2e/etc/passwd", "//reload",
        "/reload/", "*", "", "/\xff\x00", "http://127.0.0.1/reload",
    ]),
    st.text(st.characters(max_codepoint=255), max_size=20),
)


def _head(method: str, path: str, version: str, headers: list[str], end: str) -> bytes:
    start = f"{method} {path} {version}{end}"
    return (start + "".join(h + end for h in headers) + end).encode("latin-1")


def http_heads(token: str, host: str, with_the_token: bool) -> st.SearchStrategy[bytes]:
    """Request heads (latin-1 bytes) for a status page served on ``host`` with ``token``:
    methods, paths with odd bytes and percent-encoding, Host, Origin, Authorization
    (wrong, empty, huge tokens; the right one only ``with_the_token``), Content-Length
    lies, chunked. Some end in bare LFs, which the page never takes for a head's end."""
    wrong = [token[:-1], token + "0", "wrong", "", "x" * 9000, token + "\xe9", token.upper()]
    tokens = [*wrong, *([token] * 3 if with_the_token else [])]
    bearers = [f"Authorization: Bearer {t}" for t in tokens]
    bearers += [f"Authorization: Basic {token}", "Authorization: Bearer", "Authorization:"]
    headers = st.one_of(
        st.sampled_from([
            f"Host: {host}", "Host: localhost", "Host: rebound.example", "Host:", "Host: [",
            "Host: [::1]:1", "Host: :80", f"Origin: http://{host}", "Origin: null",
            "Origin: http://evil.example", "Content-Length: 0", "Content-Length: 7",
            "Content-Length: -1", "Content-Length: +3", "Content-Length: 1_0",
            "Content-Length: ²", "Content-Length: 99999", "Content-Length: " + "9" * 5000,
            "Transfer-Encoding: chunked", "X-Odd: \x00\xff", "NoColon", ": empty",
        ]),
        st.sampled_from(bearers),
        st.text(st.characters(max_codepoint=255), max_size=30),
    )
    wild = st.builds(
        _head, st.sampled_from(["GET", "POST", "HEAD", "PUT", "DELETE", "get", "", "G ET"]),
        _PATHS, st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2", "http/1.1", ""]),
        st.lists(headers, max_size=6), st.sampled_from(["\r\n", "\n"]),
    )
    likely = st.builds(  # close to a browser's or curl's: they get past the parsing
        _head, st.sampled_from(["GET", "POST"]),
        st.sampled_from(["/", "/status.json", "/history.json", "/reload", "/rollback", "/x"]),
        st.just("HTTP/1.1"),
        st.lists(st.sampled_from([
            f"Host: {host}", "Host: rebound.example", f"Origin: http://{host}",
            "Origin: http://evil.example", "Content-Length: 3", "Content-Length: 0", *bearers,
        ]), max_size=4),
        st.just("\r\n"),
    )
    return st.one_of(likely, wild)
