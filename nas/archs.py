"""Turn what a user types (string, reference name, file) into an Architecture, and describe it."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from search_spaces import zoo
from search_spaces.arch import Architecture
from search_spaces.cost import cost
from search_spaces.errors import ArchitectureError, unknown
from search_spaces.layout import resolve
from search_spaces.limits import BuildLimits, check_buildable
from search_spaces.registry import load_space
from search_spaces.space import SearchSpace


def resolve_arch(text: str, space: str | SearchSpace | None = None,
                 limits: BuildLimits | None = None) -> tuple[Architecture, Any]:
    """Architecture from a reference name, a file (YAML/JSON/text) or a canonical string, refused
    when it is too large to build (``limits``).

    With ``space``, the architecture must be a member; it comes back in the space's canonical form.
    """
    if text in zoo.names():
        arch = zoo.reference(text)
    elif ":" in text:
        arch = Architecture.parse(text)
    elif Path(text).is_file():
        try:
            arch = Architecture.from_yaml(Path(text).read_text())
        except OSError as exc:
            raise ArchitectureError(f"cannot read architecture file {text}: {exc}") from None
    else:
        raise unknown("architecture (reference name, arch string or file)", text, zoo.names())
    check_buildable(arch, limits=limits or BuildLimits())
    loaded = load_space(space) if space is not None else None
    if loaded is not None:
        arch = loaded.validate(arch)
    return arch, loaded


def describe(arch: Architecture, space: SearchSpace | None = None) -> dict[str, Any]:
    """The facts ``nas show --json`` prints: arch, space, resolution, params, MACs."""
    c = cost(arch)
    return {
        "arch": space.to_string(arch) if space is not None else str(arch),
        "space": space.name if space is not None else arch.space,
        "resolution": arch.resolution,
        "params": c.params,
        "macs": c.macs,
        "layers": len(resolve(arch).layers),
    }
