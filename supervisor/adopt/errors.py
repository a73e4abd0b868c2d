"""The one error ``fnud init`` reports for a user mistake: ``file:line: message``."""

from __future__ import annotations


class InitError(Exception):
    """What cannot be adopted, and where (``line`` 0: the file as a whole; ``path`` "":
    no file, e.g. a bad option)."""

    def __init__(self, path: object, line: int, message: str) -> None:
        self.path = str(path) if path else ""
        self.line = line
        self.message = message
        where = f"{self.path}:{line}: " if self.path and line > 0 else (
            f"{self.path}: " if self.path else ""
        )
        super().__init__(where + message)
