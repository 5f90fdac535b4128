"""Find search spaces: the shipped YAML files by name, or a user's YAML file by path."""
from __future__ import annotations

from pathlib import Path

from search_spaces.checks import is_file
from search_spaces.errors import SpaceError, unknown
from search_spaces.macro import MacroSpace
from search_spaces.schema import load_spec
from search_spaces.space import SearchSpace

SHIPPED = Path(__file__).resolve().parent


def space_names() -> list[str]:
    """Names of the spaces shipped with nas."""
    return sorted(p.stem for p in SHIPPED.glob("*.yaml"))


def load_space(space: str | Path | SearchSpace) -> SearchSpace:
    """A space object from a shipped name (``mbconv``), a YAML path, or an existing space."""
    if isinstance(space, SearchSpace):
        return space
    text = str(space)
    if isinstance(space, Path) or text.endswith((".yaml", ".yml")) or "/" in text:
        if not is_file(text):
            raise SpaceError(f"space file {text} does not exist")
        return MacroSpace(load_spec(text))
    if text not in space_names():
        raise unknown("space", text, space_names())
    return MacroSpace(load_spec(SHIPPED / f"{text}.yaml"))


def list_spaces() -> list[SearchSpace]:
    """Every shipped space, sorted by name."""
    return [load_space(name) for name in space_names()]
