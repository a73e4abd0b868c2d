"""What every `fnud` command needs, without click: one-line errors and exit codes, and
the config (the thin settings, else the full parser's one-line error)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, NoReturn

from supervisor.common.text import for_terminal
from supervisor.config import client as clientconf
from supervisor.config.client import ClientConfig

if TYPE_CHECKING:
    from supervisor.config.schema import Config

EXIT_CONFIG = 2
EXIT_NOT_RUNNING = 3


def fail(message: str, code: int = 1) -> NoReturn:
    sys.stderr.write(f"fnud: {for_terminal(message)}\n")
    sys.exit(code)


def full_config(explicit: str | None) -> Config:
    """The full config from ``-c`` (else $FNUD_CONFIG, else ./config/fnud.toml);
    a mistake in it ends the command with its one line, exit 2."""
    from supervisor.config.parse import ConfigError, load_config

    try:
        return load_config(clientconf.config_path(explicit, os.environ))
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG)


def client_config(explicit: str | None) -> ClientConfig:
    """What a thin command needs; a file the thin reader cannot read gets the full
    parser's error."""
    path = clientconf.config_path(explicit, os.environ)
    return clientconf.read(path) or clientconf.from_config(full_config(explicit))
