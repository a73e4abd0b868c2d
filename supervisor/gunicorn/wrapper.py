"""The config file every generation runs under (``-c``): hooks.py with the generation's
SETTINGS filled in, written into the runtime dir."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HOOKS = Path(__file__).with_name("hooks.py")
SETTINGS_LINE = "SETTINGS: dict[str, Any] = {}  # fnud renders each generation's settings here"


def render(settings: dict[str, Any]) -> str:
    """hooks.py's text with ``settings`` in place of its empty SETTINGS."""
    text = HOOKS.read_text(encoding="utf-8")
    if text.count(SETTINGS_LINE) != 1:
        raise RuntimeError(f"{HOOKS}: the SETTINGS line is missing")
    filled = f"SETTINGS: dict[str, Any] = json.loads({json.dumps(json.dumps(settings))})"
    return text.replace(SETTINGS_LINE, filled)
