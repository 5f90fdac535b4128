"""The ConvNeXt block: depthwise kxk, LayerNorm, inverted MLP, layer scale; a patchify downsample."""
from __future__ import annotations

from search_spaces.kinds.ops import Cost, add, conv, linear, norm
from search_spaces.kinds.record import BlockKind, LayerLayout


def convnext_cost(layer: LayerLayout) -> Cost:
    cin, cout, mid, k, out = layer.in_channels, layer.out_channels, layer.mid_channels, layer.kernel, layer.out_size
    down = add(norm(cin), conv(cin, cout, layer.stride, 1, out, bias=True)) if layer.downsample else (0, 0)
    tokens = out * out
    fc1, fc2 = linear(cout, mid), linear(mid, cout)
    return add(down, conv(cout, cout, k, cout, out, bias=True), norm(cout),
               (fc1[0], fc1[1] * tokens), (fc2[0], fc2[1] * tokens), (cout, 0))  # the last: layer scale


KINDS = (
    BlockKind(
        "convnext", "ConvNeXt block: depthwise kxk, LayerNorm, MLP of expansion x channels, layer scale",
        frozenset({"kernel", "expansion", "act"}), {"kernel": 7, "expansion": 4, "act": None},
        "search_spaces.blocks:ConvNeXtBlock", lambda block, in_ch, out_ch: max(1, round(out_ch * block.expansion)),
        convnext_cost, patchify=True,
    ),
)
