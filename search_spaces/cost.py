"""Parameters and MACs computed from the Architecture alone, without building a model.

MACs follow ``FlopCounterMode`` total / 2: convolutions and linear layers only, one image, weight
count times output positions, biases and norms not counted.
"""
from __future__ import annotations

from dataclasses import dataclass

from search_spaces.arch import Architecture
from search_spaces.layout import HeadLayout, LayerLayout, StemLayout, conv_out, resolve


@dataclass(frozen=True)
class Cost:
    params: int
    macs: int


def _conv(cin: int, cout: int, k: int, groups: int, size: int, bias: bool = False) -> tuple[int, int]:
    weights = cout * (cin // groups) * k * k
    return weights + (cout if bias else 0), weights * size * size


def _bn(c: int) -> tuple[int, int]:
    return 2 * c, 0


def _linear(cin: int, cout: int) -> tuple[int, int]:
    return cin * cout + cout, cin * cout


def _se(layer: LayerLayout) -> tuple[int, int]:
    mid, sq = layer.mid_channels, layer.se_channels
    return _add(_conv(mid, sq, 1, 1, 1, bias=True), _conv(sq, mid, 1, 1, 1, bias=True))


def _add(*parts: tuple[int, int]) -> tuple[int, int]:
    return sum(p for p, _ in parts), sum(m for _, m in parts)


def _shortcut(layer: LayerLayout) -> tuple[int, int]:
    if not layer.downsample:
        return 0, 0
    return _add(_conv(layer.in_channels, layer.out_channels, 1, 1, layer.out_size), _bn(layer.out_channels))


def _layer(layer: LayerLayout) -> tuple[int, int]:
    cin, cout, mid, k, out = (
        layer.in_channels, layer.out_channels, layer.mid_channels, layer.kernel, layer.out_size,
    )
    se = _se(layer) if layer.se_channels else (0, 0)
    if layer.kind == "mb":
        expand = _add(_conv(cin, mid, 1, 1, layer.in_size), _bn(mid)) if mid != cin else (0, 0)
        return _add(expand, _conv(mid, mid, k, mid, out), _bn(mid), se, _conv(mid, cout, 1, 1, out), _bn(cout))
    if layer.kind == "fmb":
        if mid == cin:
            return _add(_conv(cin, cout, k, 1, out), _bn(cout))
        return _add(_conv(cin, mid, k, 1, out), _bn(mid), se, _conv(mid, cout, 1, 1, out), _bn(cout))
    if layer.kind == "basic":
        return _add(_conv(cin, cout, k, 1, out), _bn(cout), _conv(cout, cout, k, 1, out), _bn(cout), _shortcut(layer))
    if layer.kind == "bottleneck":
        return _add(
            _conv(cin, mid, 1, 1, layer.in_size), _bn(mid),
            _conv(mid, mid, k, layer.groups, out), _bn(mid),
            _conv(mid, cout, 1, 1, out), _bn(cout), _shortcut(layer),
        )
    if layer.kind == "convnext":
        down = (
            _add(_bn(cin), _conv(cin, cout, layer.stride, 1, out, bias=True))
            if layer.downsample else (0, 0)
        )
        tokens = out * out
        fc1, fc2 = _linear(cout, mid), _linear(mid, cout)
        return _add(
            down, _conv(cout, cout, k, cout, out, bias=True), _bn(cout),
            (fc1[0], fc1[1] * tokens), (fc2[0], fc2[1] * tokens), (cout, 0),  # layer scale
        )
    if layer.kind == "skip":
        return _shortcut(layer)
    raise ValueError(f"no cost model for block kind {layer.kind!r}")


def _stem(stem: StemLayout) -> tuple[int, int]:
    # The conv's own output: before the ResNet max-pool; a patch stem has no padding.
    conv_size = conv_out(stem.in_size, stem.kernel, stem.stride, 0 if stem.kind == "patch" else None)
    conv = _conv(3, stem.out_channels, stem.kernel, 1, conv_size, bias=stem.kind == "patch")
    return _add(conv, _bn(stem.out_channels))  # BN or LayerNorm: 2C affine parameters either way


def _head(head: HeadLayout, num_classes: int) -> tuple[int, int]:
    parts = []
    width = head.in_channels
    if head.kind == "conv":
        parts += [_conv(width, head.channels, 1, 1, head.in_size), _bn(head.channels)]
        width = head.channels
    if head.kind == "norm":
        parts.append(_bn(width))
    if head.hidden:
        parts.append(_linear(width, head.hidden))
        width = head.hidden
    parts.append(_linear(width, num_classes))
    return _add(*parts)


def cost(arch: Architecture | str, num_classes: int = 1000) -> Cost:
    """Exact parameter count and MACs of ``build_model(arch, num_classes)`` at its resolution."""
    if isinstance(arch, str):
        arch = Architecture.parse(arch)
    layout = resolve(arch)
    params, macs = _add(_stem(layout.stem), *map(_layer, layout.layers), _head(layout.head, num_classes))
    return Cost(params, macs)


def count_params(arch: Architecture | str, num_classes: int = 1000) -> int:
    return cost(arch, num_classes).params


def count_macs(arch: Architecture | str, num_classes: int = 1000) -> int:
    return cost(arch, num_classes).macs
