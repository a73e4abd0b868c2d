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


def for_terminal(text: str) -> str:
    """Printable on a terminal, lines kept: like :func:`one_line` for each line, so a
    traceback stays readable and an escape sequence in it cannot drive the terminal."""
    return "\n".join(one_line(line).replace("\\t", "\t") for line in text.split("\n"))
