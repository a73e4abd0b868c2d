"""common/trust.py: what root reads where the app's user writes, and what it trusts
(files made here and given to another uid; as root only)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from supervisor.common.trust import (
    owned_like_its_dir,
    read_untrusted,
    untrusted_reason,
)

OTHER = 33  # a uid that is not root's (www-data on Debian)
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="gives files to another uid")


def users_dir(tmp_path: Path) -> Path:
    tmp_path.chmod(0o755)
    home = tmp_path / "home"
    home.mkdir()
    os.chown(home, OTHER, OTHER)
    return home


def test_a_link_the_user_planted_is_not_followed(tmp_path: Path) -> None:
    home = users_dir(tmp_path)
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$...\n")
    (home / "uwsgi.ini").symlink_to(secret)
    with pytest.raises(OSError):
        read_untrusted(home / "uwsgi.ini")
    (home / "conf").symlink_to(tmp_path)  # a directory link in the middle
    with pytest.raises(OSError):
        read_untrusted(home / "conf" / "shadow")


def test_roots_own_links_are_followed(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "app.ini").write_text("[uwsgi]\n")
    (tmp_path / "current").symlink_to("real")
    assert read_untrusted(tmp_path / "current" / "app.ini") == b"[uwsgi]\n"


def test_a_fifo_or_a_large_file_is_refused_without_blocking(tmp_path: Path) -> None:
    home = users_dir(tmp_path)
    os.mkfifo(home / "uwsgi.ini")
    with pytest.raises(OSError, match="not a regular file"):
        read_untrusted(home / "uwsgi.ini")
    (home / "big.ini").write_bytes(b"x" * 2000)
    with pytest.raises(OSError, match="larger than"):
        read_untrusted(home / "big.ini", max_bytes=1000)
    assert read_untrusted(home / "big.ini", max_bytes=4000) == b"x" * 2000
    with pytest.raises(IsADirectoryError):
        read_untrusted(home)


def test_what_root_trusts_must_be_roots_alone(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    conf = tmp_path / "fnud.toml"
    conf.write_text("")
    conf.chmod(0o644)
    assert untrusted_reason(conf) == ""  # /tmp is sticky: acceptable, as for sshd
    os.chown(conf, OTHER, 0)
    assert "owned by uid 33" in untrusted_reason(conf)
    os.chown(conf, 0, OTHER)
    conf.chmod(0o664)
    assert "writable by group 33" in untrusted_reason(conf)
    conf.chmod(0o644)
    os.chown(conf, 0, 0)
    tmp_path.chmod(0o777)
    assert "writable by every user" in untrusted_reason(conf)
    tmp_path.chmod(0o755)
    os.chown(tmp_path, OTHER, OTHER)
    assert f"directory {tmp_path} is owned by uid 33" in untrusted_reason(conf)
    os.chown(tmp_path, 0, 0)


def test_an_entry_of_a_corner_belongs_to_the_corners_owner(tmp_path: Path) -> None:
    corner = users_dir(tmp_path)
    mine = corner / "events"
    mine.write_text("")
    os.chown(mine, OTHER, OTHER)
    fd = os.open(mine, os.O_RDONLY)
    try:
        assert owned_like_its_dir(fd, mine)
    finally:
        os.close(fd)
    roots = corner / "linked"
    roots.write_text("")  # root's: what a hard link to a file of root's would look like
    fd = os.open(roots, os.O_RDONLY)
    try:
        assert not owned_like_its_dir(fd, roots)
    finally:
        os.close(fd)
