"""Where evaluations run: ``local`` (this process, one at a time); others register here."""
from __future__ import annotations

from typing import Any

from nas.backends.local import LocalBackend
from search_spaces.errors import unknown

BACKENDS: dict[str, type] = {"local": LocalBackend}


def make_backend(name: str) -> Any:
    if name not in BACKENDS:
        raise unknown("backend", name, sorted(BACKENDS))
    return BACKENDS[name]()


__all__ = ["BACKENDS", "LocalBackend", "make_backend"]
