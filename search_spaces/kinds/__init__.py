"""Block kinds: one record per kind holds everything the rest of nas needs to know about it.

A kind's record (`BlockKind`) gives its grammar token, the `Block` fields it reads, the options a
space file may set and their defaults, how wide its inner layers are, its analytic cost and where
its ``nn.Module`` lives. The grammar (`arch`), space files (`schema`), layouts (`layout`), the cost
model (`cost`), the builders and the test generators all read the record, so adding a kind is one
module whose ``KINDS`` lists its records plus one line in `BUILTIN` below.

The records are torch-free (the module is named as ``"package.module:Class"`` and imported when a
network is built), so parsing, validating and costing architectures never imports torch.
"""
from __future__ import annotations

import importlib

from search_spaces.kinds.record import FIELDS, BlockKind

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


# The built-in kinds: each module's ``KINDS`` is registered, in this order (the grammar's listing order).
BUILTIN = (
    "search_spaces.kinds.mbconv",
    "search_spaces.kinds.resnet",
    "search_spaces.kinds.convnext",
    "search_spaces.kinds.skip",
    "search_spaces.kinds.shuffle",
)
for _module in BUILTIN:
    for _kind in importlib.import_module(_module).KINDS:
        register(_kind)
