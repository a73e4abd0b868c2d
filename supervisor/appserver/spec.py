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
    #: modules only the server provides: the preflight gives the app a stand-in
    stubs: tuple[str, ...] = ()
    #: ``callable`` may be a call with literal arguments, made to get the app
    factory: bool = False
    #: the module name prefix a ``wsgi_file`` is loaded under
    file_prefix: str = ""

    @property
    def label(self) -> str:
        return self.module or self.wsgi_file
