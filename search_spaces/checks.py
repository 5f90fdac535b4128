"""The checks every layer's settings share, each a one-line ``ConfigError`` naming the field."""
from __future__ import annotations

from typing import Any

from search_spaces.errors import ConfigError


def check_int(name: str, value: Any, low: int, allow_none: bool = False) -> None:
    """Refuse anything but an integer >= ``low`` (or None when ``allow_none``), in one line."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        extra = " or null" if allow_none else ""
        raise ConfigError(f"{name}: must be an integer >= {low}{extra}, got {value!r}")


def check_auto(name: str, value: Any) -> None:
    """Refuse anything but auto, true or false, in one line."""
    if value != "auto" and not isinstance(value, bool):
        raise ConfigError(f"{name}: must be auto, true or false, got {value!r}")
