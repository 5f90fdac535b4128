"""Every concrete stem, layer and head a space's members can contain (for per-block latency tables).

A layer's cost depends on what feeds it (input channels and feature-map size), so the walk follows
the states a stage can be entered in: for each resolution and width, the stem's output, then each
stage's possible outputs given its block options, depths and (per-layer spaces) every layer's op.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from search_spaces import layout
from search_spaces.arch import Head, Stem
from search_spaces.layout import HeadLayout, LayerLayout, StemLayout
from search_spaces.macro import MacroSpace

State = tuple[int, int]  # (channels, feature-map size) entering a layer


@dataclass(frozen=True)
class Parts:
    """The distinct parts of a space's networks; layers carry no stage index or drop-path rate."""

    stems: frozenset[StemLayout]
    layers: frozenset[LayerLayout]
    heads: frozenset[HeadLayout]

    def __len__(self) -> int:
        return len(self.stems) + len(self.layers) + len(self.heads)


def _plain(layer: LayerLayout) -> LayerLayout:
    return replace(layer, stage=0, drop_path=0.0)


def reachable_parts(space: MacroSpace) -> Parts:
    """All stems, layers and heads of all members of ``space`` (exact, no sampling)."""
    spec = space.spec
    stems: set[StemLayout] = set()
    layers: set[LayerLayout] = set()
    heads: set[HeadLayout] = set()
    for resolution in spec.resolutions:
        for width in spec.widths:
            stem = layout.stem_layout(Stem(**spec.stem), resolution, width, spec.act)
            stems.add(stem)
            states: set[State] = {(stem.out_channels, stem.out_size)}
            for i, stage in enumerate(spec.stages):
                states = _stage_outputs(space, i, states, width, layers)
            heads.update(layout.head_layout(Head(**spec.head), c, size, width, spec.act) for c, size in states)
    return Parts(frozenset(stems), frozenset(layers), frozenset(heads))


def _stage_outputs(space: MacroSpace, i: int, states: set[State], width: float, seen: set[LayerLayout]) -> set[State]:
    """The states stage ``i`` can leave, entered in ``states``; its layers are added to ``seen``."""
    stage, act = space.spec.stages[i], space.spec.act
    first, rest = space.stage_blocks(i, stage.stride), space.stage_blocks(i, 1)
    outputs: set[State] = set()
    if stage.granularity == "stage":
        for block, repeat in zip(first, rest):
            for channels, size in states:
                layer = layout.layer_layout(block, 0, channels, size, width, act)
                if layer.out_size < 1:
                    continue
                seen.add(_plain(layer))
                state = (layer.out_channels, layer.out_size)
                if max(stage.depths) > 1:
                    seen.add(_plain(layout.layer_layout(repeat, 0, *state, width, act)))
                outputs.add(state)
        return outputs
    current = states
    for j in range(max(stage.depths)):
        following: set[State] = set()
        for block in first if j == 0 else rest:
            for channels, size in current:
                layer = layout.layer_layout(block, 0, channels, size, width, act)
                if layer.out_size >= 1:
                    seen.add(_plain(layer))
                    following.add((layer.out_channels, layer.out_size))
        current = following
        if j + 1 in stage.depths:
            outputs |= current
    return outputs
