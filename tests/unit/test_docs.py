"""The user docs: the generated key table, links that resolve, every sh block run or excused."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor.config.parse import parse_config
from testkit import configdoc


def _user_docs() -> list[Path]:
    root = configdoc.ROOT
    docs = sorted((root / "docs").glob("*.md"))
    return [root / "README.md", *docs, root / "deploy" / "README.md"]


def _anchor(heading: str) -> str:
    """GitHub's anchor for a markdown heading."""
    import re

    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def test_documented_key_table_is_generated_from_config() -> None:
    documented = configdoc.doc_table(configdoc.DOC.read_text(encoding="utf-8"))
    assert documented == configdoc.table(), (
        "docs/configuration.md's fnud.toml keys differ from the config schema "
        "(keys, defaults or comments): run python -m testkit.configdoc"
    )


def test_the_key_table_is_documented_in_one_place() -> None:
    for doc in [configdoc.ROOT / "README.md", *sorted((configdoc.ROOT / "docs").glob("*.md"))]:
        if doc != configdoc.DOC:
            assert configdoc.BEGIN not in doc.read_text(encoding="utf-8"), doc


def test_the_key_table_check_notices_a_change() -> None:
    """A key, a default or a comment that differs fails the comparison above."""
    text = configdoc.DOC.read_text(encoding="utf-8")
    block = configdoc.doc_table(text)
    for old, new in [
        ("stop_timeout = 20.0", "stop_timeout = 21.0"),
        ("settle = 10.0", "settel = 10.0"),
        ("# graceful stop budget", "# stop budget"),
    ]:
        assert old in block, old
        changed = text.replace(block, block.replace(old, new, 1))
        assert configdoc.doc_table(changed) != configdoc.table(), new
    with pytest.raises(ValueError, match="appears 2 times"):
        configdoc.doc_table(text + configdoc.BEGIN)


def test_documented_key_table_is_a_config_of_defaults() -> None:
    text = configdoc.table().removeprefix("```toml\n").removesuffix("\n```")
    path = Path("/c/fnud.toml")
    assert parse_config(text, path) == parse_config("", path)


def test_relative_links_in_the_docs_resolve() -> None:
    """Every relative link in README.md, docs/ and deploy/README.md names a file (and, with
    #anchor into a markdown file, a heading) that exists."""
    import re

    link = re.compile(r"\]\(([^)\s]+)\)")
    for doc in _user_docs():
        text = re.sub(r"```.*?```", "", doc.read_text(encoding="utf-8"), flags=re.S)
        for target in link.findall(text):
            if re.match(r"[a-z]+:", target):
                continue  # http:, https:, mailto:
            path, _, anchor = target.partition("#")
            file = (doc.parent / path).resolve() if path else doc
            assert file.exists(), f"{doc.name}: {target}: no such file"
            if anchor and file.suffix == ".md":
                headings = re.findall(r"^#+ (.*)$", file.read_text(encoding="utf-8"), flags=re.M)
                assert anchor in {_anchor(h) for h in headings}, f"{doc.name}: {target}: no heading"


def test_key_comments_come_from_the_field_line() -> None:
    source = "class S:\n    a: int = 1  # one\n    b: tuple[int, ...] = (\n        2,\n    )  # 2\n"
    assert configdoc.field_comments(source) == {("S", "a"): "one", ("S", "b"): "2"}


def test_every_sh_block_is_run_by_a_test_or_says_why_not() -> None:
    from testkit import docblocks

    for doc in docblocks.DOCS:
        for block in docblocks.blocks(doc):
            if block.lang != "sh":
                continue
            first = block.commands()[0]
            assert first in docblocks.RUN_BY, f"{block.where}: which test runs `{first}`?"
            runner = docblocks.RUN_BY[first]
            if not runner.startswith("not run:"):
                assert (docblocks.ROOT / runner).is_file(), runner
