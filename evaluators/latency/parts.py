"""Table keys of a network's parts (stem, each layer, head) and the modules to time for them.

A key holds everything that changes a part's cost: block type, input/output/inner channels,
kernel, stride, groups, squeeze-excite width and kind, activation, input resolution (and, for the
head, the number of classes). Stage index and drop-path rate do not change inference cost.
"""
from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from torch import nn

from search_spaces.arch import Architecture, Block, Head, Stem
from search_spaces.blocks import make_block, make_head, make_stem
from search_spaces.layout import (
    HeadLayout,
    LayerLayout,
    StemLayout,
    head_layout,
    layer_layout,
    stem_layout,
)
from search_spaces.scaling import scale_stage_depth

Part = StemLayout | LayerLayout | HeadLayout


def stem_key(stem: StemLayout) -> str:
    pool = "_pool" if stem.pool else ""
    return f"stem:{stem.kind}_k{stem.kernel}_s{stem.stride}_o{stem.out_channels}{pool}_{stem.act}@{stem.in_size}"


def layer_key(layer: LayerLayout) -> str:
    se = f"_se{layer.se_channels}{'h' if layer.se_hard else ''}" if layer.se_channels else ""
    return (f"{layer.kind}:i{layer.in_channels}_o{layer.out_channels}_m{layer.mid_channels}_k{layer.kernel}"
            f"_s{layer.stride}_g{layer.groups}{se}_{layer.act}@{layer.in_size}")


def head_key(head: HeadLayout, num_classes: int) -> str:
    return (f"head:{head.kind}_i{head.in_channels}_c{head.channels}_h{head.hidden}_{head.act}"
            f"@{head.in_size}_n{num_classes}")


def part_key(part: Part, num_classes: int) -> str:
    if isinstance(part, StemLayout):
        return stem_key(part)
    if isinstance(part, HeadLayout):
        return head_key(part, num_classes)
    return layer_key(part)


@lru_cache(maxsize=1 << 16)
def _stem_step(stem: Stem, resolution: int, width: float, act: str) -> tuple[str, int, int]:
    layout = stem_layout(stem, resolution, width, act)
    return stem_key(layout), layout.out_channels, layout.out_size


@lru_cache(maxsize=1 << 16)
def _head_step(head: Head, channels: int, size: int, width: float, act: str, num_classes: int) -> str:
    return head_key(head_layout(head, channels, size, width, act), num_classes)


@lru_cache(maxsize=1 << 16)
def _single_layer(block: Block, first: bool) -> Block:
    """``block.layer``, memoised: a space has few distinct blocks, and copying one is most of a step."""
    return block.layer(0 if first else 1)


@lru_cache(maxsize=1 << 18)
def _layer_step(layer: Block, in_channels: int, size: int, width: float, act: str) -> tuple[str, int, int]:
    out = layer_layout(layer, 0, in_channels, size, width, act)
    return layer_key(out), out.out_channels, out.out_size


@lru_cache(maxsize=1 << 18)
def _group_steps(block: Block, count: int, in_channels: int, size: int, width: float,
                 act: str) -> tuple[tuple[str, ...], int, int]:
    """The keys of a group's ``count`` layers: one lookup per group on a network's cold path.

    Layers after the first repeat it at stride 1 with equal input and output, so they share one
    key; keying the layer step on the single layer (not the group) lets groups that differ only in
    depth share their layer steps.
    """
    first, in_channels, size = _layer_step(_single_layer(block, True), in_channels, size, width, act)
    if count == 1:
        return (first,), in_channels, size
    rest, in_channels, size = _layer_step(_single_layer(block, False), in_channels, size, width, act)
    return (first,) + (rest,) * (count - 1), in_channels, size


@lru_cache(maxsize=1 << 16)
def network_keys(arch: Architecture, num_classes: int) -> tuple[str, ...]:
    """The keys of every part of ``arch``, in order (repeated layers repeat).

    The same walk as ``layout.resolve`` but memoised per block group and in its context, so keying a
    fresh network costs a few dictionary lookups per group (predictions for thousands per second).
    """
    width, act = arch.width, arch.act
    key, channels, size = _stem_step(arch.stem, arch.resolution, width, act)
    keys = [key]
    for stage in arch.stages:
        repeats = [b.repeats for b in stage]
        counts = repeats if arch.depth == 1.0 else scale_stage_depth(repeats, arch.depth)
        for block, count in zip(stage, counts):
            group, channels, size = _group_steps(block, count, channels, size, width, act)
            keys.extend(group)
    keys.append(_head_step(arch.head, channels, size, width, act, num_classes))
    return tuple(keys)


def clear_key_caches() -> None:
    """Forget every memoised key and layout step (to time predictions on a cold start)."""
    for cached in (network_keys, _group_steps, _layer_step, _single_layer, _stem_step, _head_step):
        cached.cache_clear()


def part_module(part: Part, num_classes: int) -> tuple[nn.Module, tuple[int, ...]]:
    """The module of one part and its input shape without the batch dimension."""
    if isinstance(part, StemLayout):
        return make_stem(part), (3, part.in_size, part.in_size)
    if isinstance(part, HeadLayout):
        return make_head(part, num_classes), (part.in_channels, part.in_size, part.in_size)
    return make_block(part), (part.in_channels, part.in_size, part.in_size)


def keyed_parts(parts: Iterable[Part], num_classes: int) -> dict[str, Part]:
    """``{key: part}`` in a stable order (sorted keys), so a profile's progress is reproducible."""
    keyed = {part_key(p, num_classes): p for p in parts}
    return dict(sorted(keyed.items()))
