"""`fnud status` as a table: the daemon's status answer rendered for humans (no I/O)."""

from __future__ import annotations

from typing import Any

from supervisor.common.text import one_line


def render_status(result: dict[str, Any]) -> str:
    daemon = result["daemon"]
    lines = [f"fnud daemon pid {daemon['pid']} ({daemon['phase']}), config {daemon['config']}"]
    lines += [f"PROBLEM: {problem}" for problem in result.get("problems", [])]
    lines.append("")
    lines.append(
        f"{'PROGRAM':<8} {'STATE':<9} {'PID':>7} {'UPTIME':>8} {'RSS':>8} {'RESTARTS':>8}  INFO"
    )
    for name, prog in result["programs"].items():
        info = prog.get("why") or (prog.get("last_exit") if prog["state"] != "RUNNING" else "")
        lines.append(
            f"{name:<8} {prog['state']:<9} {prog['pid'] or '-':>7} "
            f"{_duration(prog.get('uptime', 0)):>8} {_size(prog.get('rss', 0)):>8} "
            f"{prog.get('restarts', 0):>8}  {info or ''}"
        )
    app = (result.get("app") or {}).get("program")
    workers = result["programs"].get(app, {}).get("workers", []) if app else []
    if workers:
        lines += ["", f"  {'WORKER':<6} {'PID':>7} {'STATUS':<8} {'REQUESTS':>9} {'RSS':>8}"]
        for w in workers:
            lines.append(
                f"  {w['id']:<6} {w['pid']:>7} {w['status']:<8} {w['requests']:>9} "
                f"{_size(w.get('rss', 0)):>8}"
            )
    nginx_workers = result["programs"].get("nginx", {}).get("workers", [])
    if nginx_workers:
        shown = ", ".join(f"{w['pid']} ({_size(w.get('rss', 0))})" for w in nginx_workers)
        lines += ["", f"  nginx workers: {shown}"]
    lines += _generation(result.get("generation"))
    last = result.get("last_reload")
    lines.append("")
    if last:
        lines.append(
            f"last reload: {last['result']} ({last['duration']}s, {last['reason']}): "
            f"{last['message']}"
        )
    else:
        lines.append("last reload: none yet")
    return "\n".join(one_line(line) for line in lines)  # reasons name files, say


def _generation(gen: dict[str, Any] | None) -> list[str]:
    """The serving generation and, during a settle, the warm previous one."""
    if not gen:
        return []
    out = ["", f"  generation {gen['number']} {gen['state']} ({gen['mode']}): {gen['release']}"]
    previous = gen.get("previous")
    if previous and previous["state"] != "paused":
        out.append(
            f"  generation {previous['number']} {previous['state']} (its release pinned: a "
            f"rollback starts it again): {previous['release']}"
        )
    elif previous:
        out.append(
            f"  generation {previous['number']} {previous['state']} (pid {previous['pid']}, "
            f"kept warm for a rollback): {previous['release']}"
        )
    return out


def _size(count: int) -> str:
    if not count:
        return "-"
    value = float(count)
    for unit in ("B", "K", "M"):
        if value < 1024:
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}G"


def _duration(seconds: float) -> str:
    if not seconds:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
