"""`fnud status` once, without click: the command monitors and scripts call in a loop
(entry.py runs it before importing click; the click command calls it too)."""

from __future__ import annotations

import json
import sys

from supervisor.cli.basics import EXIT_NOT_RUNNING, client_config, fail, full_config
from supervisor.cli.statusview import render_status
from supervisor.control import wire
from supervisor.runtime.lock import lock_holder


def once(config: str | None, as_json: bool) -> int:
    """Print the status; the exit code: 0 all RUNNING, 1 not, 3 no daemon (2: a
    mistake in fnud.toml, said first when no daemon runs)."""
    client = client_config(config)
    if lock_holder(client.paths.lock) is None:
        full_config(config)  # a broken fnud.toml first (exit 2)
        print(json.dumps({"daemon": None, "programs": {}}) if as_json else "fnud is not running")
        return EXIT_NOT_RUNNING
    try:
        result = wire.call(client.paths.socket, "status")
    except wire.ClientError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot reach the daemon at {client.paths.socket}: {exc}")
    print(json.dumps(result) if as_json else render_status(result))
    return 0 if all(p["state"] == "RUNNING" for p in result["programs"].values()) else 1


def parse(argv: list[str]) -> tuple[str | None, bool] | None:
    """(config, json) when ``argv`` is a plain ``[-c FILE] status [--json]``; None for
    anything else (click parses that)."""
    config: str | None = None
    rest = list(argv)
    while (rest and rest[0] in ("-c", "--config")) or (rest and rest[0].startswith("--config=")):
        option = rest.pop(0)
        if "=" in option:
            config = option.partition("=")[2]
        elif rest:
            config = rest.pop(0)
        else:
            return None
    if rest == ["status"] or rest == ["status", "--json"]:
        return config, rest == ["status", "--json"]
    return None


def main(argv: list[str] | None = None) -> None:
    parsed = parse(sys.argv[1:] if argv is None else argv)
    if parsed is None:
        from supervisor.cli.main import main as with_click

        with_click(prog_name="fnud")
        return
    sys.exit(once(*parsed))
