"""What root may read, and what it may trust.

Two rules, one walk of a path, component by component, from ``/``:

- ``read_untrusted``: a file in a tree the app's user may write (its ini, its conf) is
  read without following a link that user could have planted (a link is followed only
  when it and its directory are root's), opened non-blocking (a FIFO there cannot freeze
  the daemon), only when it is a regular file, and size-capped.
- ``untrusted_reason``: a file root executes or trusts (fnud.toml, nginx's config, a
  binary) must be writable by root alone, and so must every directory above it, as
  sshd's StrictModes wants. A sticky world-writable directory (/tmp) may be on the way
  when the entry below it is root's.

"Root" here is uid 0 and the user fnud runs as (the same when fnud is root).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable
from pathlib import PurePosixPath

MAX_LINKS = 32
MAX_BYTES = 1 << 20  # an ini, a conf, a JSON answer: far below this


class Untrusted(Exception):
    """A directory on the way that others may write: ``path`` and ``why``."""

    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"directory {path} is {why}")
        self.path, self.why = path, why


def _trusted_uid(uid: int) -> bool:
    return uid in (0, os.geteuid())


def _writable_by_others(info: os.stat_result) -> str:
    """Who else may write this entry ('' for nobody)."""
    mode = info.st_mode
    if not _trusted_uid(info.st_uid):
        return f"owned by uid {info.st_uid}"
    if mode & stat.S_IWGRP and info.st_gid != 0:
        return f"writable by group {info.st_gid}"
    if mode & stat.S_IWOTH and not (stat.S_ISDIR(mode) and mode & stat.S_ISVTX):
        return "writable by every user"
    return ""


def _parts(path: str) -> list[str]:
    """The components still to walk, last first (a stack)."""
    return list(reversed([p for p in PurePosixPath(path).parts if p not in ("/", ".")]))


def _walk(
    path: str, strict: bool, last: Callable[[int, str], int]
) -> int:
    """Walk ``path`` from ``/``; ``last(dirfd, name)`` opens the final component and
    returns an fd (it raises ELOOP/ENOTDIR on a link, which is then followed where
    allowed). ``strict``: every directory on the way must be root's alone."""
    todo = _parts(os.path.abspath(path))
    dirfd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    links = 0
    try:
        if strict:
            _check_dir(dirfd, "/")
        while todo:
            name = todo.pop()
            try:
                if todo:
                    fd = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                 dir_fd=dirfd)
                else:
                    fd = last(dirfd, name)
                    if stat.S_ISLNK(os.fstat(fd).st_mode):  # O_PATH opens the link itself
                        os.close(fd)
                        raise OSError(errno.ELOOP, "a symbolic link")
                    return fd
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR) or links >= MAX_LINKS:
                    raise
                target = _link_target(dirfd, name, exc)
                links += 1
                todo.extend(_parts(target))
                if target.startswith("/"):
                    os.close(dirfd)
                    dirfd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                continue
            os.close(dirfd)
            dirfd = fd
            if strict:
                _check_dir(dirfd, name)
        raise OSError(errno.EISDIR, "a directory, not a file")
    finally:
        os.close(dirfd)


def _check_dir(dirfd: int, name: str) -> None:
    why = _writable_by_others(os.fstat(dirfd))
    if why:
        raise Untrusted(os.readlink(f"/proc/self/fd/{dirfd}"), why)


def _link_target(dirfd: int, name: str, exc: OSError) -> str:
    """Where a link leads, when it may be followed: it and its directory are root's."""
    info = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    if not stat.S_ISLNK(info.st_mode):
        raise exc
    if _writable_by_others(os.fstat(dirfd)) or not _trusted_uid(info.st_uid):
        raise OSError(errno.ELOOP, "a symbolic link another user may change: not followed")
    return os.readlink(name, dir_fd=dirfd)


def read_untrusted(path: str | os.PathLike[str], max_bytes: int = MAX_BYTES) -> bytes:
    """The bytes of a regular file the app's user may control (see the module's doc);
    OSError when it is a link that may not be followed, not a regular file, or larger
    than ``max_bytes``."""

    def open_last(dirfd: int, name: str) -> int:
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        return os.open(name, flags, dir_fd=dirfd)

    fd = _walk(os.fspath(path), False, open_last)
    with open(fd, "rb", closefd=True) as handle:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory")
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, "not a regular file")
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise OSError(errno.EFBIG, f"larger than {max_bytes} bytes")
    return data


def read_untrusted_text(path: str | os.PathLike[str], max_bytes: int = MAX_BYTES) -> str:
    """``read_untrusted`` as UTF-8 (UnicodeDecodeError when it is not)."""
    return read_untrusted(path, max_bytes).decode("utf-8")


def open_path(path: str | os.PathLike[str], kind: int) -> int:
    """An O_PATH fd of the file at ``path`` (a socket, a fifo: ``kind`` is its
    S_IFMT), reached as ``read_untrusted`` reaches a file; connect to a unix socket
    through ``/proc/self/fd/N``."""

    def open_last(dirfd: int, name: str) -> int:
        return os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)

    fd = _walk(os.fspath(path), False, open_last)
    info = os.fstat(fd)
    if stat.S_IFMT(info.st_mode) != kind:
        os.close(fd)
        raise OSError(errno.EINVAL, "not the kind of file expected")
    return fd


def owned_like_its_dir(fd: int, path: str | os.PathLike[str]) -> bool:
    """The file open at ``fd`` belongs to the owner of the directory it is in: whoever
    owns a corner of the runtime dir can plant entries there, but only its own (a hard
    link to someone else's file keeps that owner)."""
    parent = os.path.dirname(os.path.abspath(os.fspath(path)))
    return os.fstat(fd).st_uid == os.stat(parent).st_uid


def untrusted_reason(path: str | os.PathLike[str]) -> str:
    """Why root may not trust ``path`` ('' when it is root's alone, up to ``/``)."""
    found = untrusted_entry(path)
    return f"{os.fspath(path)}: {found[1]}" if found else ""


def untrusted_entry(path: str | os.PathLike[str]) -> tuple[str, str] | None:
    """(the file or directory others may write, why) on the way to ``path``; None when
    it is root's alone."""
    name = os.fspath(path)

    def open_last(dirfd: int, last: str) -> int:
        return os.open(last, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)

    try:
        fd = _walk(name, True, open_last)
    except Untrusted as exc:
        return exc.path, str(exc)
    except OSError as exc:
        return name, str(exc.strerror or exc)
    try:
        why = _writable_by_others(os.fstat(fd))
    finally:
        os.close(fd)
    return (name, why) if why else None


def is_trusted(path: str | os.PathLike[str]) -> bool:
    with contextlib.suppress(OSError):
        return not untrusted_reason(path)
    return False
