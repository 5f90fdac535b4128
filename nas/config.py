"""``key=value`` command-line overrides merged over defaults with OmegaConf, checked strictly."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
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
    _refuse_interpolations(defaults)
    base = OmegaConf.create(dict(defaults))
    known = flat_keys(defaults)
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"expected key=value, got {item!r}")
        if key not in known and not any(key.startswith(p + ".") or key == p for p in open_keys):
            raise ConfigError(describe_choices("key", key, known))
        _refuse_interpolations({key: value})
        try:  # each item alone first, so that a value YAML cannot read is named with its key
            OmegaConf.from_dotlist([item])
        except (OmegaConfBaseException, yaml.YAMLError) as exc:
            reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ConfigError(f"{key}: cannot read the value {value!r} ({reason}); quote it or close its "
                              "brackets") from None
    try:
        overrides = OmegaConf.from_dotlist(list(items))
    except OmegaConfBaseException as exc:
        raise ConfigError(f"cannot parse overrides: {str(exc).splitlines()[0]}") from None
    _check_tree("", OmegaConf.to_container(base), OmegaConf.to_container(overrides))
    return OmegaConf.merge(base, overrides)


def _refuse_interpolations(settings: Mapping[str, Any], prefix: str = "") -> None:
    """OmegaConf would expand ``${...}`` (another key, an environment variable) or fail on it; a
    setting is taken as written, so such a value is an error (the shell expands variables)."""
    for key, value in settings.items():
        if isinstance(value, Mapping):
            _refuse_interpolations(value, f"{prefix}{key}.")
        elif isinstance(value, str) and "${" in value:
            raise ConfigError(f"{prefix}{key}: {value!r} is not expanded: settings are taken as written "
                              "(let the shell expand variables)")


def _check_tree(prefix: str, defaults: Any, values: Mapping[str, Any]) -> None:
    """Type-check ``values`` against ``defaults`` at every level: a group of settings (a mapping by
    default) takes only its keys, never one value (``limits=3``)."""
    for key, value in values.items():
        default = defaults.get(key) if isinstance(defaults, Mapping) else None
        if isinstance(default, Mapping):
            if not isinstance(value, Mapping):
                keys = ", ".join(f"{prefix}{key}.{k}" for k in default) or f"{prefix}{key}.<name>"
                raise ConfigError(f"{prefix}{key}: a group of settings, not a value (got {value!r}); "
                                  f"set its keys: {keys}")
            _check_tree(f"{prefix}{key}.", default, value)
        elif isinstance(value, Mapping) and default is not None:
            raise ConfigError(f"{prefix}{key}: expected {type(default).__name__}, got {value!r}")
        elif isinstance(value, Mapping):
            _check_tree(f"{prefix}{key}.", {}, value)
        else:
            _check_type(f"{prefix}{key}", default, value)


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
