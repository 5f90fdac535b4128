"""Where evaluations run: ``local`` (this process, one at a time) or ``ray`` (Ray Tune trials)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nas.backends.local import LocalBackend
from search_spaces.errors import unknown

BACKENDS = ("local", "ray")


def make_backend(name: str, options: Mapping[str, Any] | None = None) -> Any:
    """The backend ``name``; ``options`` are the ``ray.*`` settings (checked here)."""
    if name not in BACKENDS:
        raise unknown("backend", name, list(BACKENDS))
    if name == "ray":
        from nas.backends.ray_tune import RayBackend  # noqa: PLC0415 - imports Ray, only when asked for

        return RayBackend(options)
    return LocalBackend()


__all__ = ["BACKENDS", "LocalBackend", "make_backend"]
