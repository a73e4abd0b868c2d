"""``nginx -t`` with exactly the flags fnud runs nginx with, and its messages parsed."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path

from supervisor.nginx.conf import Message, NginxConf
from supervisor.nginx.driver import argv


def test_argv(
    binary: str, prefix: Path, conf_path: Path, conf: NginxConf, user: str = "", group: str = ""
) -> list[str]:
    """``nginx -t`` with exactly the flags fnud runs nginx with (errors to stderr)."""
    return [*argv(binary, prefix, conf_path, conf, "stderr", user, group), "-t", "-q"]


_ENTRY_RE = re.compile(
    r"^(?:\d{4}/\d\d/\d\d \d\d:\d\d:\d\d )?\[(?P<level>[a-z]+)\] (?:\d+#\d+: )?(?P<text>.*)$",
    re.DOTALL,
)
_WHERE_RE = re.compile(r"^(?P<text>.*) in (?P<file>.+):(?P<line>\d+)$", re.DOTALL)


def parse_test_line(line: str, conf_path: Path) -> Message | None:
    """One line of ``nginx -t`` (its ``nginx: `` prefix removed) as a Message; None for
    the summary ("configuration file ... test failed"), which only repeats the others."""
    if line.startswith("configuration file ") and line.endswith("test failed"):
        return None
    entry = _ENTRY_RE.match(line)
    level, text = (entry.group("level"), entry.group("text")) if entry else ("", line)
    where = _WHERE_RE.match(text)
    if where:
        return Message(where.group("file"), int(where.group("line")), where.group("text"), level)
    return Message(str(conf_path), 0, text, level)


@dataclass(frozen=True)
class ConfigTest:
    """What ``nginx -t`` said: its exit, and its lines (without nginx's own noise)."""

    ok: bool
    lines: tuple[str, ...]
    conf_path: Path

    @property
    def messages(self) -> list[Message]:
        parsed = (parse_test_line(line, self.conf_path) for line in self.lines)
        return [message for message in parsed if message is not None]

    @property
    def text(self) -> str:
        """One line for a log or an answer."""
        return "; ".join(self.lines)


async def config_test(
    binary: str,
    prefix: Path,
    conf_path: Path,
    conf: NginxConf,
    env: dict[str, str],
    user: str = "",
    group: str = "",
) -> ConfigTest:
    """Run ``nginx -t`` with exactly the flags fnud runs nginx with."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *test_argv(binary, prefix, conf_path, conf, user, group),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            cwd=str(conf_path.parent),
            start_new_session=True,
        )
    except OSError as exc:
        return ConfigTest(False, (f"{binary}: {exc.strerror}",), conf_path)
    out, _ = await proc.communicate()
    lines = tuple(
        line.removeprefix("nginx: ")
        for line in out.decode(errors="replace").splitlines()
        if line.strip() and "test is successful" not in line and "syntax is ok" not in line
    )
    return ConfigTest(proc.returncode == 0, lines, conf_path)
