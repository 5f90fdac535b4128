"""Parameters and MACs computed from the Architecture alone, without building a model.

MACs follow ``FlopCounterMode`` total / 2: convolutions and linear layers only, one image, weight
count times output positions, biases and norms not counted. Each block kind counts its own layers
(``search_spaces/kinds/``); the stem and head are counted here.
"""
from __future__ import annotations

from dataclasses import dataclass

from search_spaces.arch import Architecture
from search_spaces.kinds import block_kind
from search_spaces.kinds.ops import add, conv, linear, norm
from search_spaces.layout import HeadLayout, StemLayout, conv_out, resolve


@dataclass(frozen=True)
class Cost:
    params: int
    macs: int


def _stem(stem: StemLayout) -> tuple[int, int]:
    # The conv's own output: before the ResNet max-pool; a patch stem has no padding.
    conv_size = conv_out(stem.in_size, stem.kernel, stem.stride, 0 if stem.kind == "patch" else None)
    first = conv(3, stem.out_channels, stem.kernel, 1, conv_size, bias=stem.kind == "patch")
    return add(first, norm(stem.out_channels))  # BN or LayerNorm: 2C affine parameters either way


def _head(head: HeadLayout, num_classes: int) -> tuple[int, int]:
    parts = []
    width = head.in_channels
    if head.kind == "conv":
        parts += [conv(width, head.channels, 1, 1, head.in_size), norm(head.channels)]
        width = head.channels
    if head.kind == "norm":
        parts.append(norm(width))
    if head.hidden:
        parts.append(linear(width, head.hidden))
        width = head.hidden
    parts.append(linear(width, num_classes))
    return add(*parts)


def cost(arch: Architecture | str, num_classes: int = 1000) -> Cost:
    """Exact parameter count and MACs of ``build_model(arch, num_classes)`` at its resolution."""
    if isinstance(arch, str):
        arch = Architecture.parse(arch)
    layout = resolve(arch)
    params, macs = add(_stem(layout.stem), *(block_kind(layer.kind).cost(layer) for layer in layout.layers),
                       _head(layout.head, num_classes))
    return Cost(params, macs)


def count_params(arch: Architecture | str, num_classes: int = 1000) -> int:
    return cost(arch, num_classes).params


def count_macs(arch: Architecture | str, num_classes: int = 1000) -> int:
    return cost(arch, num_classes).macs
