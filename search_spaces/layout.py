"""Resolve an `Architecture` into concrete layers: scaled channels, depths and feature-map sizes.

The builder and the analytic cost model both read this one layout, so the network that is built and
the network that is costed cannot drift apart. Rounding rules follow torchvision:
- block and stem channels: ``make_divisible(c * width, 8)`` when width != 1;
- head conv channels: scaled by ``max(1, width)`` (MobileNetV2 never shrinks its head);
- repeats per stage: ``ceil(n * depth)`` (shared out in proportion when a stage has several groups);
- inner channels by each kind's rule (``search_spaces/kinds/``), e.g. MBConv's expanded channels
  ``make_divisible(in * expansion, 8)`` (``in`` if e == 1);
- SE squeeze: by the kind's rule on the block input, ``max(1, int(in * ratio))`` (EfficientNet) or
  ``round(in * ratio)`` (ResNet kinds, as RegNetY), or, for ``hse``, ``make_divisible(expanded *
  ratio, 8)`` (MobileNetV3);
- stochastic depth of layer i (0-based) of n: ``drop_path * i / n`` (torchvision EfficientNet).
"""
from __future__ import annotations

from dataclasses import dataclass

from search_spaces.arch import Architecture, Block, Head, Stem
from search_spaces.errors import ArchitectureError
from search_spaces.kinds import block_kind
from search_spaces.kinds.record import LayerLayout
from search_spaces.scaling import make_divisible, scale_channels, scale_stage_depth

# LayerLayout is defined beside the block-kind records (every kind builds and costs one) and
# re-exported here, where architectures are resolved into layers.
__all__ = ["HeadLayout", "LayerLayout", "NetworkLayout", "StemLayout", "conv_out", "head_layout",
           "layer_layout", "resolve", "stem_layout"]


def conv_out(size: int, kernel: int, stride: int, padding: int | None = None) -> int:
    """Spatial size after a convolution or pooling with 'same'-style padding (k - 1) // 2."""
    padding = (kernel - 1) // 2 if padding is None else padding
    return (size + 2 * padding - kernel) // stride + 1


@dataclass(frozen=True)
class StemLayout:
    kind: str
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    pool: bool
    act: str
    in_size: int
    out_size: int


@dataclass(frozen=True)
class HeadLayout:
    kind: str
    in_channels: int
    channels: int
    hidden: int
    dropout: float
    act: str
    in_size: int

    @property
    def features(self) -> int:
        """Width of the vector fed to the classifier."""
        return self.hidden or self.channels or self.in_channels


@dataclass(frozen=True)
class NetworkLayout:
    resolution: int
    stem: StemLayout
    layers: tuple[LayerLayout, ...]
    head: HeadLayout


def _se_channels(block: Block, in_ch: int, mid: int) -> int:
    if not block.se:
        return 0
    if block.se_hard:
        return make_divisible(mid * block.se, 8)
    return block_kind(block.kind).squeeze(in_ch, block.se)


def stem_layout(stem: Stem, resolution: int, width: float, act: str) -> StemLayout:
    """The stem at ``resolution`` with channels scaled by ``width``."""
    padding = 0 if stem.kind == "patch" else None
    after = conv_out(resolution, stem.kernel, stem.stride, padding)
    if stem.pool:
        after = conv_out(after, 3, 2)
    if after < 1:
        raise ArchitectureError(f"architecture: resolution {resolution} is too small for the stem")
    return StemLayout(stem.kind, 3, scale_channels(stem.channels, width), stem.kernel, stem.stride, stem.pool,
                      stem.act or act, resolution, after)


def layer_layout(block: Block, stage: int, in_channels: int, size: int, width: float, act: str,
                 drop_path: float = 0.0) -> LayerLayout:
    """One layer of ``block`` fed ``in_channels`` x ``size`` x ``size`` features."""
    out_ch = scale_channels(block.channels, width)
    kind = block_kind(block.kind)
    mid = kind.mid_channels(block, in_channels, out_ch)
    if kind.patchify and (block.stride != 1 or in_channels != out_ch):
        out_size = conv_out(size, block.stride, block.stride, 0)
    else:
        out_size = conv_out(size, 1, block.stride)
    return LayerLayout(
        kind=block.kind, stage=stage, in_channels=in_channels, out_channels=out_ch, mid_channels=mid,
        kernel=block.kernel, stride=block.stride, groups=block.groups,
        se_channels=_se_channels(block, in_channels, mid), se_hard=block.se_hard, act=block.act or act,
        in_size=size, out_size=out_size, drop_path=drop_path,
        residual=kind.always_residual or (block.stride == 1 and in_channels == out_ch),
    )


def head_layout(head: Head, in_channels: int, size: int, width: float, act: str) -> HeadLayout:
    """The head on ``in_channels`` x ``size`` x ``size`` features (its conv never narrows below 1x)."""
    channels = scale_channels(head.channels, max(1.0, width)) if head.kind == "conv" else 0
    return HeadLayout(head.kind, in_channels, channels, head.hidden, head.dropout, head.act or act, size)


def resolve(arch: Architecture) -> NetworkLayout:
    """The concrete network an architecture describes (scaled, expanded, with sizes)."""
    stem = stem_layout(arch.stem, arch.resolution, arch.width, arch.act)
    size, in_ch = stem.out_size, stem.out_channels
    plan: list[tuple[int, Block]] = []
    for s, stage in enumerate(arch.stages):
        repeats = scale_stage_depth([b.repeats for b in stage], arch.depth)
        for block, r in zip(stage, repeats):
            plan += [(s, block.layer(i)) for i in range(r)]

    layers: list[LayerLayout] = []
    total = len(plan)
    for index, (s, block) in enumerate(plan):
        layer = layer_layout(block, s, in_ch, size, arch.width, arch.act, arch.drop_path * index / total)
        if layer.out_size < 1:
            raise ArchitectureError(
                f"architecture: resolution {arch.resolution} is too small: the feature map "
                f"vanishes at stage {s + 1} (layer {index + 1})"
            )
        layers.append(layer)
        size, in_ch = layer.out_size, layer.out_channels
    head = head_layout(arch.head, in_ch, size, arch.width, arch.act)
    return NetworkLayout(arch.resolution, stem, tuple(layers), head)
