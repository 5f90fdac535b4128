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

from search_spaces.errors import RegistrationError
from search_spaces.kinds.record import FIELDS, BlockKind
from search_spaces.registries import Options, Registry


def _check(name: str, kind: BlockKind) -> None:
    if not name.isalpha() or not name.islower():
        raise RegistrationError(f"block kind name {name!r} must be lowercase letters")
    unknown = set(kind.uses) - set(FIELDS)
    if unknown:
        raise RegistrationError(f"block kind {name!r}: unknown fields {sorted(unknown)}; allowed: {', '.join(FIELDS)}")


# A kind is registered under its grammar token; its options are data in its record (what a space
# file may set, besides channels).
KINDS: Registry[BlockKind] = Registry("block kind", check=_check, named=lambda kind: kind.name,
                                      options=lambda kind: Options.from_defaults(kind.options))
register = KINDS.add  # register(kind): a new, plain lowercase token only
block_kind = KINDS.__getitem__  # the record of a kind (callers check the name first and word their own error)
kind_names = KINDS.names  # every registered kind, in registration order

# The built-in kinds: each module's ``KINDS`` is registered, in this order (the grammar's listing order).
BUILTIN = (
    "search_spaces.kinds.mbconv",
    "search_spaces.kinds.resnet",
    "search_spaces.kinds.convnext",
    "search_spaces.kinds.skip",
    "search_spaces.kinds.shuffle",
)
KINDS.add_modules(BUILTIN, "KINDS")
