"""Parameter and MAC counts of the operators blocks are made of (no torch: from shapes alone).

MACs follow ``FlopCounterMode`` total / 2: convolutions and linear layers only, one image, weight
count times output positions; biases and norms cost parameters, not MACs.
"""
from __future__ import annotations

from search_spaces.kinds.record import LayerLayout

Cost = tuple[int, int]  # (params, MACs)


def conv(cin: int, cout: int, k: int, groups: int, size: int, bias: bool = False) -> Cost:
    """A k x k convolution with ``size`` x ``size`` outputs."""
    weights = cout * (cin // groups) * k * k
    return weights + (cout if bias else 0), weights * size * size


def norm(c: int) -> Cost:
    """BatchNorm or LayerNorm over ``c`` channels: 2c affine parameters."""
    return 2 * c, 0


def linear(cin: int, cout: int) -> Cost:
    return cin * cout + cout, cin * cout


def add(*parts: Cost) -> Cost:
    return sum(p for p, _ in parts), sum(m for _, m in parts)


def squeeze_excite(layer: LayerLayout) -> Cost:
    mid, sq = layer.mid_channels, layer.se_channels
    return add(conv(mid, sq, 1, 1, 1, bias=True), conv(sq, mid, 1, 1, 1, bias=True))


def projection(layer: LayerLayout) -> Cost:
    """The 1x1 conv + BN shortcut of a layer whose shape changes (none otherwise)."""
    if not layer.downsample:
        return 0, 0
    return add(conv(layer.in_channels, layer.out_channels, 1, 1, layer.out_size), norm(layer.out_channels))
