"""User-facing errors: one family, defined at the lowest layer so every part can raise it."""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class NasError(Exception):
    """Base of every error a user can cause (bad input, missing files, invalid spaces)."""


class ArchitectureError(NasError):
    """An architecture string, dict or value is malformed or not buildable."""


class SpaceError(NasError):
    """A search-space definition is invalid, or an architecture is not a member of a space."""


class ConfigError(NasError):
    """A configuration key or value is invalid."""


class UnknownNameError(NasError):
    """A name (space, strategy, model, key...) is not one of the known ones."""


class RegistrationError(NasError, ValueError):
    """A registry refuses an entry: a second one of a name, or a malformed one (also a ValueError,
    what registering raised before the registries were one)."""


def describe_choices(field: str, value: object, allowed: Iterable[object]) -> str:
    """One line naming the field, the bad value, close matches and the allowed values."""
    allowed = [str(a) for a in allowed]
    close = difflib.get_close_matches(str(value), allowed, n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return f"unknown {field} {value!r}{hint}; allowed: {', '.join(allowed)}"


def unknown(field: str, value: object, allowed: Iterable[object]) -> UnknownNameError:
    """Build an UnknownNameError with close matches, e.g. ``unknown("space", "mbconf", names)``."""
    return UnknownNameError(describe_choices(field, value, allowed))
