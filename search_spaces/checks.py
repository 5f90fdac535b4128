"""The checks every layer's settings share, each a one-line ``ConfigError`` naming the field."""
from __future__ import annotations

from pathlib import Path
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


def fits(value: Any, default: Any) -> bool:
    """Whether ``value`` has the type of an option whose default is ``default``: an int is a float,
    a bool is neither, and a default of None takes anything."""
    if default is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, type(default))


def is_file(path: str | Path) -> bool:
    """``Path.is_file``, False also for a path the system cannot look up at all (a name longer than
    the file system allows): the caller's one line then says it does not exist."""
    try:
        return Path(path).is_file()
    except OSError:
        return False
