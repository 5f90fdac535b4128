"""ShuffleNetV2's unit (Ma et al. 2018): a channel split, one branch of 1x1, depthwise kxk, 1x1, and
a channel shuffle; where it downsamples (or widens), both branches read the whole input.

As torchvision's ``InvertedResidual`` at ``k3``; the kernel is a choice, as in Single Path One-Shot's
ShuffleNet space (3, 5, 7).
"""
from __future__ import annotations

from search_spaces.kinds.ops import Cost, add, conv, norm
from search_spaces.kinds.record import Block, BlockKind, LayerLayout


def branch_width(block: Block, in_ch: int, out_ch: int) -> int:
    """Each branch gives half the output channels."""
    return out_ch // 2


def shuffle_cost(layer: LayerLayout) -> Cost:
    cin, half, k, out = layer.in_channels, layer.mid_channels, layer.kernel, layer.out_size
    if not layer.downsample:  # the split: the branch reads half the input, the other half passes
        return add(conv(half, half, 1, 1, layer.in_size), norm(half), conv(half, half, k, half, out), norm(half),
                   conv(half, half, 1, 1, out), norm(half))
    branch1 = add(conv(cin, cin, k, cin, out), norm(cin), conv(cin, half, 1, 1, out), norm(half))
    branch2 = add(conv(cin, half, 1, 1, layer.in_size), norm(half), conv(half, half, k, half, out), norm(half),
                  conv(half, half, 1, 1, out), norm(half))
    return add(branch1, branch2)


def even_channels(block: Block) -> str | None:
    if block.channels % 2:
        return f"channels must be even (the unit splits them in halves), got {block.channels}"
    return None


KINDS = (
    BlockKind(
        "shuffle", "ShuffleNetV2 unit: channel split, 1x1, depthwise kxk, 1x1, channel shuffle",
        frozenset({"kernel", "act"}), {"kernel": 3, "act": None}, "search_spaces.blocks:ShuffleUnit",
        branch_width, shuffle_cost, check=even_channels,
    ),
)
