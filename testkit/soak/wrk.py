"""wrk for the soak's whole run: (requests, failed), failed = socket errors + non-2xx/3xx."""

from __future__ import annotations

import re
import shutil
import subprocess
from urllib.parse import urlsplit


def available() -> bool:
    return shutil.which("wrk") is not None


def run(url: str, seconds: float, connections: int = 32) -> tuple[int, int]:
    assert urlsplit(url).hostname in ("127.0.0.1", "localhost"), "load is for loopback"
    result = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{max(1, int(seconds))}s", "--timeout", "30s", url],
        capture_output=True, text=True, timeout=seconds + 120,
    )
    text = result.stdout
    requests = int(m.group(1)) if (m := re.search(r"(\d+) requests in", text)) else 0
    failed = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
    failed += int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", text)) else 0
    return requests, failed
