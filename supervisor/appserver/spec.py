"""What an app server will load: the app preflight imports exactly this, the same way."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AppSpec:
    python: str
    chdir: str
    pythonpath: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    module: str
    wsgi_file: str
    callable: str

    @property
    def label(self) -> str:
        return self.module or self.wsgi_file
