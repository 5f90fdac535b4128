"""Channel and depth rounding shared by the builder, the cost model, the zoo and compound scaling."""
from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING

from search_spaces.rounding import make_divisible

if TYPE_CHECKING:
    from search_spaces.arch import Architecture

__all__ = ["make_divisible", "scale_architecture", "scale_channels", "scale_depth", "scale_stage_depth"]


def scale_channels(channels: int, width: float, divisor: int = 8) -> int:
    """Channels after a width multiplier; a multiplier of 1 leaves any channel count as given."""
    if width == 1.0:
        return channels
    return make_divisible(channels * width, divisor)


def scale_depth(repeats: int, depth: float) -> int:
    """Layers after a depth multiplier (EfficientNet rounds up)."""
    if depth == 1.0:
        return repeats
    return math.ceil(repeats * depth)


def scale_stage_depth(repeats: list[int], depth: float) -> list[int]:
    """Scale a stage made of several block groups, keeping their proportions.

    The stage total is rounded up as for a single group; the scaled total is then shared out from
    the last group backwards, so that the first group (which carries the stride) keeps at least one.
    """
    if depth == 1.0:
        return list(repeats)
    total = sum(repeats)
    target = scale_depth(total, depth)
    scaled: list[int] = []
    for r in reversed(repeats):
        share = max(1, round(r / total * target))
        scaled.append(share)
        total -= r
        target -= share
    return scaled[::-1]


def compound_multipliers(
    phi: float, alpha: float = 1.2, beta: float = 1.1, gamma: float = 1.15
) -> tuple[float, float, float]:
    """EfficientNet compound scaling: (depth, width, resolution) multipliers for coefficient phi."""
    return alpha**phi, beta**phi, gamma**phi


def scale_architecture(
    arch: Architecture,
    width: float = 1.0,
    depth: float = 1.0,
    resolution: int | None = None,
    dropout: float | None = None,
) -> Architecture:
    """Scale an architecture: multiply its width/depth multipliers, set resolution and dropout.

    Channels and repeats are rounded by the layout (``make_divisible(c * w, 8)``, ``ceil(n * d)``),
    so B0 scaled by (1.1, 1.2) builds exactly torchvision's EfficientNet-B2.
    """
    head = arch.head if dropout is None else replace(arch.head, dropout=dropout)
    return arch.replace(
        # Rounded so that 1.0 * 1.1 stays 1.1 and the canonical string stays short.
        width=round(arch.width * width, 10),
        depth=round(arch.depth * depth, 10),
        resolution=arch.resolution if resolution is None else int(resolution),
        head=head,
    )
