"""Text from outside (file names, a reload's reason, a config's values) made safe to
print on one line of a terminal."""

from __future__ import annotations


def one_line(text: str) -> str:
    """Printable on one line: control characters (escape sequences, newlines) and
    undecodable bytes (surrogates) are escaped."""
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape", "backslashreplace").decode("ascii")
        for ch in text
    )
