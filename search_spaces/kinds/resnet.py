"""ResNet's basic block and the ResNet/ResNeXt bottleneck (v1.5: stride on the kxk conv)."""
from __future__ import annotations

from search_spaces.kinds.ops import Cost, add, conv, norm, projection
from search_spaces.kinds.record import Block, BlockKind, LayerLayout


def basic_cost(layer: LayerLayout) -> Cost:
    cin, cout, k, out = layer.in_channels, layer.out_channels, layer.kernel, layer.out_size
    return add(conv(cin, cout, k, 1, out), norm(cout), conv(cout, cout, k, 1, out), norm(cout), projection(layer))


def bottleneck_width(block: Block, in_ch: int, out_ch: int) -> int:
    """``out * expansion`` rounded to a multiple of the groups (torchvision's ResNeXt widths)."""
    g = block.groups
    return max(g, round(out_ch * block.expansion / g) * g)


def bottleneck_cost(layer: LayerLayout) -> Cost:
    cin, cout, mid, k, out = layer.in_channels, layer.out_channels, layer.mid_channels, layer.kernel, layer.out_size
    return add(conv(cin, mid, 1, 1, layer.in_size), norm(mid), conv(mid, mid, k, layer.groups, out), norm(mid),
               conv(mid, cout, 1, 1, out), norm(cout), projection(layer))


KINDS = (
    BlockKind(
        "basic", "ResNet basic block: two kxk convs and a shortcut", frozenset({"kernel", "act"}),
        {"kernel": 3, "act": None}, "search_spaces.blocks:BasicBlock", lambda block, in_ch, out_ch: out_ch,
        basic_cost, always_residual=True,
    ),
    BlockKind(
        "bottleneck", "ResNet/ResNeXt bottleneck: 1x1, grouped kxk, 1x1 and a shortcut",
        frozenset({"kernel", "expansion", "groups", "act"}),
        {"kernel": 3, "cardinality": 1, "width_per_group": 64, "act": None}, "search_spaces.blocks:Bottleneck",
        bottleneck_width, bottleneck_cost, always_residual=True,
    ),
)
