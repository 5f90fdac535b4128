"""``key=value`` command-line overrides merged over defaults with OmegaConf, checked strictly."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from search_spaces.errors import ConfigError, describe_choices


def flat_keys(node: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Every leaf key of a nested mapping, dotted (``{"a": {"b": 1}}`` -> ``["a.b"]``)."""
    keys = []
    for key, value in node.items():
        path = f"{prefix}{key}"
        keys.append(path)
        if isinstance(value, Mapping):
            keys += flat_keys(value, path + ".")
    return keys


def parse_overrides(
    items: Sequence[str], defaults: Mapping[str, Any], open_keys: Sequence[str] = ()
) -> DictConfig:
    """Merge ``["a=1", "b.c=x"]`` over ``defaults``.

    Unknown keys are errors with close matches, except below the ``open_keys`` prefixes (free-form
    option groups such as ``strategy_options.*``). Values are typed by YAML rules (``n=3`` is an
    int, ``objectives=[accuracy,latency_ms]`` a list); a value whose type does not fit the default's
    is an error naming the key and the expected type.
    """
    base = OmegaConf.create(dict(defaults))
    known = flat_keys(defaults)
    for item in items:
        key, sep, _ = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"expected key=value, got {item!r}")
        if key not in known and not any(key.startswith(p + ".") or key == p for p in open_keys):
            raise ConfigError(describe_choices("key", key, known))
    try:
        overrides = OmegaConf.from_dotlist(list(items))
    except OmegaConfBaseException as exc:
        raise ConfigError(f"cannot parse overrides: {str(exc).splitlines()[0]}") from None
    for key in flat_keys(OmegaConf.to_container(overrides)):
        default = OmegaConf.select(base, key, default=None)
        value = OmegaConf.select(overrides, key)
        _check_type(key, default, value)
    return OmegaConf.merge(base, overrides)


def _check_type(key: str, default: Any, value: Any) -> None:
    if default is None or value is None or isinstance(default, (DictConfig, Mapping)):
        return
    expected: tuple[type, ...]
    if isinstance(default, bool):
        expected = (bool,)
    elif isinstance(default, int):
        expected = (int,)
    elif isinstance(default, float):
        expected = (int, float)
    elif isinstance(default, str):
        expected = (str, int, float)  # a name may look like a number, e.g. a run id
    else:
        return
    if isinstance(value, bool) and bool not in expected:
        ok = False
    else:
        ok = isinstance(value, expected)
    if not ok:
        raise ConfigError(
            f"{key}: expected {type(default).__name__}, got {value!r} ({type(value).__name__})"
        )


@dataclass(frozen=True)
class Command:
    """A command line's words: the positional ones, and the key=value settings over the defaults."""

    positional: list[str]
    settings: dict[str, Any]
    given: set[str]  # the top-level keys the line set


def parse_command(items: Sequence[str], defaults: Mapping[str, Any], groups: Sequence[str] = (),
                  open_keys: Sequence[str] = (), max_positional: int | None = None,
                  what: str = "argument") -> Command:
    """The one parser of every ``nas`` command: words without ``=`` are positional (at most
    ``max_positional``); ``GROUP=NAME`` for a group in ``groups`` names its member (``GROUP.name=NAME``);
    the rest go through ``parse_overrides``."""
    positional = [item for item in items if "=" not in item]
    if max_positional == 0 and positional:
        raise ConfigError(f"{what}: expected key=value, got {positional[0]!r}")
    if max_positional is not None and len(positional) > max_positional:
        raise ConfigError(f"{what}: give at most {max_positional} without key=, got {len(positional)} "
                          f"({', '.join(positional)})")
    overrides = []
    for item in items:
        key, sep, value = item.partition("=")
        if sep:
            overrides.append(f"{key}.name={value}" if key in groups else item)
    parsed = parse_overrides(overrides, defaults, open_keys)
    settings: dict[str, Any] = OmegaConf.to_container(parsed, resolve=True)  # type: ignore[assignment]
    return Command(positional, settings, {item.partition("=")[0].partition(".")[0] for item in overrides})
