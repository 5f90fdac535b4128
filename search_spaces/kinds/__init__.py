"""Block kinds: one record per kind holds everything the rest of nas needs to know about it.

A kind's record (`BlockKind`) gives its grammar token, the `Block` fields it reads, the options a
space file may set and their defaults, how wide its inner layers are, its analytic cost and where
its ``nn.Module`` lives. The grammar (`arch`), space files (`schema`), layouts (`layout`), the cost
model (`cost`), the builders and the test generators all read the record, so adding a kind is one
module that calls `register` plus one line in `BUILTIN` below.

The records are torch-free (the module is named as ``"package.module:Class"`` and imported when a
network is built), so parsing, validating and costing architectures never imports torch.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from search_spaces.arch import Block
    from search_spaces.layout import LayerLayout

FIELDS = ("kernel", "expansion", "se", "groups", "act")  # the optional Block fields a kind may read


@dataclass(frozen=True)
class BlockKind:
    """Everything about one block kind; see the module docstring."""

    name: str  # the grammar token: "mb" in mb_k3_e6_c24
    description: str
    uses: frozenset[str]  # which of FIELDS the kind reads; the others are pinned to neutral values
    options: Mapping[str, Any]  # space-file options and their defaults (besides channels)
    module: str  # "package.module:Class", built as Class(layer: LayerLayout)
    mid_channels: Callable[[Block, int, int], int]  # (block, in channels, out channels) -> inner width
    cost: Callable[[LayerLayout], tuple[int, int]]  # (params, MACs) of one layer
    always_residual: bool = False  # adds a (projected) shortcut even where the shape changes
    patchify: bool = False  # downsamples with a kernel = stride conv (ConvNeXt): size // stride
    check: Callable[[Block], str | None] = field(default=lambda block: None)  # an error, or None

    def build(self, layer: LayerLayout) -> Any:
        """The layer's ``nn.Module`` (imports the module that defines it)."""
        module, _, attr = self.module.partition(":")
        return getattr(importlib.import_module(module), attr)(layer)


_KINDS: dict[str, BlockKind] = {}


def register(kind: BlockKind) -> BlockKind:
    """Add a block kind (its name must be new and a plain lowercase token)."""
    if not kind.name.isalpha() or not kind.name.islower():
        raise ValueError(f"block kind name {kind.name!r} must be lowercase letters")
    if kind.name in _KINDS:
        raise ValueError(f"block kind {kind.name!r} is registered already")
    unknown = set(kind.uses) - set(FIELDS)
    if unknown:
        raise ValueError(f"block kind {kind.name!r}: unknown fields {sorted(unknown)}; allowed: {', '.join(FIELDS)}")
    _KINDS[kind.name] = kind
    return kind


def block_kind(name: str) -> BlockKind:
    """The record of kind ``name`` (KeyError if there is none: callers word their own error)."""
    return _KINDS[name]


def kind_names() -> tuple[str, ...]:
    """Every registered kind, in registration order."""
    return tuple(_KINDS)


# The built-in kinds, each one module that registers itself; the order is the grammar's listing order.
BUILTIN = (
    "search_spaces.kinds.mbconv",
    "search_spaces.kinds.resnet",
    "search_spaces.kinds.convnext",
    "search_spaces.kinds.skip",
    "search_spaces.kinds.shuffle",
)
for _name in BUILTIN:
    importlib.import_module(_name)
