"""The identity layer (a 1x1 conv + BN where the shape changes, NAS-Bench-Macro's convention)."""
from __future__ import annotations

from search_spaces.kinds.ops import projection
from search_spaces.kinds.record import BlockKind

KINDS = (
    BlockKind(
        "skip", "identity; 1x1 conv + BN where the shape changes", frozenset(), {}, "search_spaces.blocks:Skip",
        lambda block, in_ch, out_ch: out_ch, projection,
    ),
)
