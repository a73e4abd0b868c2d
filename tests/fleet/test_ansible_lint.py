"""deploy/ansible passes ansible-lint's production profile (offline: nothing from Galaxy).

Needs the deploy extra (ansible-lint), not the fleet."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE = ROOT / "deploy" / "ansible"
LINT = Path(sys.executable).parent / "ansible-lint"

pytestmark = pytest.mark.skipif(
    not LINT.exists(), reason="ansible-lint is not installed in the venv (the deploy extra)"
)


def test_role_and_playbooks_pass_the_production_profile() -> None:
    result = subprocess.run(
        [str(LINT), "--offline", "--profile", "production", "--format", "json", "--nocolor"],
        cwd=ANSIBLE, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
        env={**os.environ, "PATH": f"{LINT.parent}{os.pathsep}{os.environ.get('PATH', '')}",
             "LC_ALL": "C.UTF-8", "NO_COLOR": "1"},
    )
    findings = [
        f"{f['location']['path']}:{line_of(f['location'])}: {f['check_name']}: {f['description']}"
        for f in json.loads(result.stdout or "[]")
    ]
    assert findings == [], "\n".join(findings)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Profile 'production' was required, and it passed" in result.stderr, result.stderr


def line_of(location: dict[str, Any]) -> object:
    """A finding's line in ansible-lint's JSON (codeclimate) report."""
    if "lines" in location:
        return location["lines"].get("begin")
    return location.get("positions", {}).get("begin", {}).get("line")
