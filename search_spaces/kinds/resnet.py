"""ResNet's basic block and the ResNet/ResNeXt/RegNet bottleneck (v1.5: stride on the kxk conv),
each with optional squeeze-excitation (SE-ResNet, RegNetY)."""
from __future__ import annotations

from search_spaces.kinds.ops import Cost, add, conv, norm, projection, squeeze_excite
from search_spaces.kinds.record import Block, BlockKind, LayerLayout


def resnet_squeeze(in_channels: int, ratio: float) -> int:
    """RegNetY's SE width (torchvision): ``round(ratio * block input)``, at least 1."""
    return max(1, round(in_channels * ratio))


def _se(layer: LayerLayout) -> Cost:
    return squeeze_excite(layer) if layer.se_channels else (0, 0)


def basic_cost(layer: LayerLayout) -> Cost:
    cin, cout, k, out = layer.in_channels, layer.out_channels, layer.kernel, layer.out_size
    return add(conv(cin, cout, k, 1, out), norm(cout), conv(cout, cout, k, 1, out), norm(cout), _se(layer),
               projection(layer))


def bottleneck_width(block: Block, in_ch: int, out_ch: int) -> int:
    """``out * expansion`` rounded to a multiple of the groups (torchvision's ResNeXt widths)."""
    g = block.groups
    return max(g, round(out_ch * block.expansion / g) * g)


def bottleneck_cost(layer: LayerLayout) -> Cost:
    cin, cout, mid, k, out = layer.in_channels, layer.out_channels, layer.mid_channels, layer.kernel, layer.out_size
    return add(conv(cin, mid, 1, 1, layer.in_size), norm(mid), conv(mid, mid, k, layer.groups, out), norm(mid),
               _se(layer), conv(mid, cout, 1, 1, out), norm(cout), projection(layer))


KINDS = (
    BlockKind(
        "basic", "ResNet basic block: two kxk convs, squeeze-excite (SE-ResNet) and a shortcut",
        frozenset({"kernel", "se", "act"}), {"kernel": 3, "se": 0, "se_hard": False, "act": None},
        "search_spaces.blocks:BasicBlock", lambda block, in_ch, out_ch: out_ch, basic_cost,
        always_residual=True, squeeze=resnet_squeeze,
    ),
    BlockKind(
        "bottleneck", "ResNet/ResNeXt/RegNet bottleneck: 1x1, grouped kxk, squeeze-excite, 1x1 and a shortcut",
        frozenset({"kernel", "expansion", "groups", "se", "act"}),
        {"kernel": 3, "cardinality": 1, "width_per_group": 64, "se": 0, "se_hard": False, "act": None},
        "search_spaces.blocks:Bottleneck", bottleneck_width, bottleneck_cost, always_residual=True,
        squeeze=resnet_squeeze,
    ),
)
