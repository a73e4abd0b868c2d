"""What ``fnud init`` prints: edits, files, how to stop the old stack, what to run next.
Pure: lines of text."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from pathlib import Path

from supervisor.adopt.ini_fix import Edit
from supervisor.adopt.site import Link


def edits(label: str, found: Sequence[Edit]) -> list[str]:
    if not found:
        return [f"{label}: no edits needed"]
    plural = "s" if len(found) != 1 else ""
    head = f"{len(found)} edit{plural} to {label} (its line numbers):"
    return [head, *(f"{label}:{edit.line}: {edit.text}" for edit in found)]


def next_commands(toml_path: Path) -> list[str]:
    config = f"fnud -c {toml_path}"
    return [
        "next:",
        f"  {config} check",
        f"  {config} start",
        f"  sudo {config} systemd-unit --install",
    ]


def written(directory: Path, files: Iterable[str], links: Iterable[Link]) -> list[str]:
    return [
        *(f"wrote {directory / name}" for name in files),
        *(f"linked {directory / link.name} -> {link.target}" for link in links),
    ]


def dry_run(
    directory: Path, files: Iterable[tuple[str, str]], links: Iterable[Link],
    existing: Collection[str] = (),
) -> list[str]:
    """Each file's content under a header line, then the links; nothing is written.
    ``existing``: names already there (the real run needs --force for them)."""
    out = []
    for name, text in files:
        how = "exists: would be overwritten with --force" if name in existing else (
            "would be written"
        )
        out.append(f"==> {directory / name} ({how}) <==")
        out += text.rstrip("\n").split("\n")
    out += [f"==> {directory / link.name} -> {link.target} (would be linked) <==" for link in links]
    out.append("dry run: nothing written")
    return out


def stop_hint(name: str, pid: int, *, nginx_unit: bool, pidfile: str) -> str:
    """How to stop the app's old uWSGI or nginx (fnud start needs their ports)."""
    if name == "nginx":
        if nginx_unit:
            return "systemctl disable --now nginx"
        return f"kill -QUIT {pid} (its graceful stop)"
    if pidfile:
        return f"uwsgi --stop {pidfile} (or kill -INT {pid})"
    return f"kill -INT {pid}"
