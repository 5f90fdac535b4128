"""MBConv (MobileNetV2/V3, EfficientNet) and fused-MBConv (EfficientNetV2)."""
from __future__ import annotations

from search_spaces.kinds.ops import Cost, add, conv, norm, squeeze_excite
from search_spaces.kinds.record import Block, BlockKind, LayerLayout
from search_spaces.rounding import make_divisible

OPTIONS = {"kernel": 3, "expansion": 1, "se": 0, "se_hard": False, "act": None}
USES = frozenset({"kernel", "expansion", "se", "act"})


def expanded(block: Block, in_ch: int, out_ch: int) -> int:
    """torchvision: ``make_divisible(in * expansion, 8)``; no expansion layer at 1."""
    return in_ch if block.expansion == 1 else make_divisible(in_ch * block.expansion, 8)


def mbconv_cost(layer: LayerLayout) -> Cost:
    cin, cout, mid, k, out = layer.in_channels, layer.out_channels, layer.mid_channels, layer.kernel, layer.out_size
    se = squeeze_excite(layer) if layer.se_channels else (0, 0)
    expand = add(conv(cin, mid, 1, 1, layer.in_size), norm(mid)) if mid != cin else (0, 0)
    return add(expand, conv(mid, mid, k, mid, out), norm(mid), se, conv(mid, cout, 1, 1, out), norm(cout))


def fused_cost(layer: LayerLayout) -> Cost:
    cin, cout, mid, k, out = layer.in_channels, layer.out_channels, layer.mid_channels, layer.kernel, layer.out_size
    if mid == cin:
        return add(conv(cin, cout, k, 1, out), norm(cout))
    se = squeeze_excite(layer) if layer.se_channels else (0, 0)
    return add(conv(cin, mid, k, 1, out), norm(mid), se, conv(mid, cout, 1, 1, out), norm(cout))


def fused_se_needs_width(block: Block) -> str | None:
    """An unwidened fused-MBConv is one kxk conv, with no place for SE: refused, not dropped."""
    if block.se and block.expansion == 1:
        token = f"{'hse' if block.se_hard else 'se'}{block.se:g}"
        return f"{token!r} needs expansion > 1 (a fused-MBConv of expansion 1 is one kxk conv)"
    return None


KINDS = (
    BlockKind(
        "mb", "inverted residual: 1x1 expand, depthwise kxk, squeeze-excite, 1x1 project", USES, OPTIONS,
        "search_spaces.blocks:MBConv", expanded, mbconv_cost,
    ),
    BlockKind(
        "fmb", "fused inverted residual: kxk expand, squeeze-excite, 1x1 project", USES, OPTIONS,
        "search_spaces.blocks:FusedMBConv", expanded, fused_cost, check=fused_se_needs_width,
    ),
)
