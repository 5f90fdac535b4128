"""The record of a block kind (`BlockKind`) and the fields it reads of blocks and layers.

The registry (``search_spaces.kinds``) sits below ``arch`` and ``layout``: the record names the
`Block` fields it reads (a protocol) instead of importing the class, and `LayerLayout`, the
resolved layer every kind builds and costs, is defined here for ``layout`` to fill in.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


class Block(Protocol):
    """What a kind reads of a ``search_spaces.arch.Block`` (the registry sits below arch, so it
    names the fields instead of importing the class)."""

    kind: str
    channels: int
    kernel: int
    stride: int
    expansion: float
    se: float
    se_hard: bool
    groups: int


@dataclass(frozen=True)
class LayerLayout:
    """One concrete layer of the network: what a block kind builds and costs (``search_spaces.layout``
    resolves an architecture into these)."""

    kind: str
    stage: int
    in_channels: int
    out_channels: int
    mid_channels: int
    kernel: int
    stride: int
    groups: int
    se_channels: int
    se_hard: bool
    act: str
    in_size: int
    out_size: int
    drop_path: float
    residual: bool  # adds its input back: the shape is kept, or the kind always has a shortcut

    @property
    def downsample(self) -> bool:
        """Whether the shortcut (or, for ConvNeXt, the layer's entry) needs a projection."""
        return self.stride != 1 or self.in_channels != self.out_channels


FIELDS = ("kernel", "expansion", "se", "groups", "act")  # the optional Block fields a kind may read


def efficientnet_squeeze(in_channels: int, ratio: float) -> int:
    """EfficientNet's SE width (torchvision's MBConv): ``max(1, int(in * ratio))`` of the block input."""
    return max(1, int(in_channels * ratio))


@dataclass(frozen=True)
class BlockKind:
    """Everything nas knows about one block kind (see ``search_spaces.kinds``)."""

    name: str  # the grammar token: "mb" in mb_k3_e6_c24
    description: str
    # Which of FIELDS the kind reads. The grammar refuses the others where they are written (a
    # string token, or a constructor value other than the neutral one), so nothing a user writes is
    # silently dropped; where they are not written they hold neutral values.
    uses: frozenset[str]
    options: Mapping[str, Any]  # space-file options and their defaults (besides channels)
    module: str  # "package.module:Class", built as Class(layer: LayerLayout)
    mid_channels: Callable[[Block, int, int], int]  # (block, in channels, out channels) -> inner width
    cost: Callable[[LayerLayout], tuple[int, int]]  # (params, MACs) of one layer
    always_residual: bool = False  # adds a (projected) shortcut even where the shape changes
    patchify: bool = False  # downsamples with a kernel = stride conv (ConvNeXt): size // stride
    check: Callable[[Block], str | None] = field(default=lambda block: None)  # an error, or None
    # (block input channels, se ratio) -> squeeze width of a sigmoid SE (``hse``, MobileNetV3's,
    # has one rule for every kind: ``search_spaces.layout``)
    squeeze: Callable[[int, float], int] = efficientnet_squeeze

    def build(self, layer: LayerLayout) -> Any:
        """The layer's ``nn.Module`` (imports the module that defines it)."""
        module, _, attr = self.module.partition(":")
        return getattr(importlib.import_module(module), attr)(layer)
