"""The commands the README and docs/ show, run as written (taken from the docs), against
a copy of the example's config and app with ports picked free: what they print is what
the docs say they print."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit import docblocks
from testkit.stackdir import ROOT, assert_no_leftovers, free_port

README = ROOT / "README.md"


class Example:
    """config/ and example/ copied to a temp dir, on free ports; run docs commands there."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.http, self.app_port = free_port(), free_port()
        shutil.copytree(ROOT / "config", root / "config")
        shutil.copytree(ROOT / "example", root / "example")
        for name in ("fnud.toml", "nginx.conf", "uwsgi.ini"):
            path = root / "config" / name
            text = path.read_text().replace("8080", str(self.http))
            path.write_text(text.replace("8001", str(self.app_port)))

    def substitute(self, command: str) -> str:
        """The command as it runs here: fnud from this interpreter, these ports."""
        fnud = f"{shlex.quote(sys.executable)} -m supervisor"
        command = command.replace(".venv/bin/fnud", fnud)
        command = command.replace("127.0.0.1:8080", f"127.0.0.1:{self.http}")
        if command == "git checkout example/app.py":  # no git here: the copy's original
            command = f"cp {shlex.quote(str(ROOT / 'example' / 'app.py'))} example/app.py"
        return command

    def run(self, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.substitute(command), shell=True, cwd=self.root, capture_output=True,
            text=True, timeout=180, stdin=subprocess.DEVNULL,
        )


@pytest.fixture
def example(tmp_path: Path) -> Iterator[Example]:
    tmp_path.chmod(0o755)  # as root, nginx's workers (nobody) traverse it to the app
    made = Example(tmp_path)
    yield made
    made.run(".venv/bin/fnud -c config/fnud.toml stop")
    assert_no_leftovers([tmp_path])


def test_the_readmes_try_it_block(example: Example) -> None:
    started = example.run(".venv/bin/fnud -c config/fnud.toml start")  # what make run does
    assert started.returncode == 0, started.stderr
    (block,) = docblocks.section(README, "Try it from a checkout", ("sh",))
    results = [(command, example.run(command)) for command in block.commands()]
    outputs = [result.stdout for _, result in results]
    codes = {command: result.returncode for command, result in results}
    reloads = [result for command, result in results if command.endswith(" reload")]
    curls = [result.stdout for command, result in results if command.startswith("curl")]
    assert "uwsgi    RUNNING" in outputs[0]
    assert curls == ["Hello from fnud\n", "Hello again\n", "Hello again\n"]
    assert reloads[0].returncode == 0, reloads[0].stderr
    assert reloads[1].returncode == 1
    assert "reload refused: app does not load:" in reloads[1].stderr
    assert "/example/app.py:43: SyntaxError: invalid syntax" in reloads[1].stderr
    assert all(code == 0 for command, code in codes.items() if not command.endswith("reload"))
    assert (example.root / "example" / "app.py").read_text() == (
        ROOT / "example" / "app.py"
    ).read_text()


def test_the_check_command_of_docs_checks(example: Example) -> None:
    (block,) = docblocks.section(ROOT / "docs" / "checks.md", "`fnud check`", ("sh",))
    (command,) = block.commands()
    result = example.run(command)
    assert result.returncode == 0, result.stdout
    assert result.stdout.strip().splitlines()[-1] == "no problems found"


def test_the_token_command_of_the_status_page_docs(tmp_path: Path) -> None:
    from supervisor.config.parse import parse_config

    blocks = [b for b in docblocks.blocks(ROOT / "docs" / "status-page.md") if b.lang == "sh"]
    (command,) = blocks[0].commands()
    token = subprocess.run(command, shell=True, capture_output=True, text=True,
                           check=True).stdout.strip()
    config = parse_config(f'[web]\nlisten = "0.0.0.0:9301"\ntoken = "{token}"\n',
                          tmp_path / "fnud.toml")
    assert config.web.token == token


def test_the_key_table_command_writes_what_the_docs_hold() -> None:
    (block,) = [b for b in docblocks.blocks(ROOT / "docs" / "development.md")
                if b.lang == "sh" and "configdoc" in b.text]
    (command,) = block.commands()
    doc = ROOT / "docs" / "configuration.md"
    before = doc.read_bytes()
    command = command.replace(".venv/bin/python", shlex.quote(sys.executable))
    subprocess.run(command, shell=True, cwd=ROOT, check=True, capture_output=True)
    assert doc.read_bytes() == before
