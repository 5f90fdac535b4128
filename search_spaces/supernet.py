"""`Supernet`: every searchable layer of a YAML space holds all its candidate blocks at once.

For differentiable search (DARTS, GDAS, FBNet). Each choosing unit (a stage, or a layer when the
space chooses per layer) owns a vector of architecture weights ``alpha`` over its candidates; a
stage with several depths owns one over its depths, and its layers beyond the shallowest depth are
gated by the probability that the stage is that deep (identity otherwise, as FBNet's skip). The
stem and head are fixed. Resolution and width are fixed per supernet (they change every layer's
shape, so they cannot share weights); where a stage's candidates differ in width the supernet
uses the widest. ``derive`` returns the space member the weights point to.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from search_spaces import layout as L
from search_spaces.arch import Architecture, Head, Stem
from search_spaces.blocks import make_block, make_head, make_stem
from search_spaces.errors import SpaceError
from search_spaces.layout import LayerLayout
from search_spaces.macro import MacroSpace
from search_spaces.space import Choices


@dataclass(frozen=True)
class SearchUnit:
    """One set of architecture weights: a unit's candidate choices, or a stage's depths."""

    name: str  # "s2" (a stage's blocks), "s2.l1" (one layer's op), "s2.depth"
    stage: int
    options: tuple[Choices, ...]  # the choices each candidate stands for
    identity: tuple[bool, ...]  # candidates that pass their input through (skip ops, shallower depth)


class MixedLayer(nn.Module):
    """One supernet layer: all candidate blocks of a unit at this position."""

    def __init__(self, candidates: list[nn.Module], unit: int, gate: tuple[int, int] | None,
                 layouts: list[LayerLayout]) -> None:
        super().__init__()
        self.candidates = nn.ModuleList(candidates)
        self.unit = unit
        self.gate = gate  # (depth unit, layer index) when the layer exists only in deeper stages
        self.layouts = layouts

    def forward(self, x: torch.Tensor, weights: torch.Tensor, index: int | None) -> torch.Tensor:
        if index is not None:  # one path (GDAS / sampled): the others cost nothing
            return self.candidates[index](x) * weights[index]
        return sum(w * op(x) for w, op in zip(weights, self.candidates))


class Supernet(nn.Module):
    """All members of ``space`` at one resolution and width, sharing a stem and a head."""

    def __init__(self, space: MacroSpace, resolution: int, width: float, num_classes: int) -> None:
        super().__init__()
        if not isinstance(space, MacroSpace):
            raise SpaceError(f"a supernet needs a YAML space; {space.name} is a {type(space).__name__}")
        spec = space.spec
        self.space, self.resolution, self.width = space, resolution, width
        stem = L.stem_layout(Stem(**spec.stem), resolution, width, spec.act)
        self.stem = make_stem(stem)
        self.units: list[SearchUnit] = []
        self.layers = nn.ModuleList()
        channels, size = stem.out_channels, stem.out_size
        for i, stage in enumerate(spec.stages):
            depth_unit = None
            if len(stage.depths) > 1:
                depth_unit = len(self.units)
                self.units.append(SearchUnit(f"s{i + 1}.depth", i, tuple({f"s{i + 1}.depth": d} for d in stage.depths),
                                             tuple(False for _ in stage.depths)))
            units = space.unit_candidates(i)
            unit_index = {}
            for name, options in units:
                blocks = [space.unit_block(i, name, o, 1) for o in options]
                unit_index[name] = len(self.units)
                self.units.append(SearchUnit(name, i, options, tuple(b.kind == "skip" for b in blocks)))
            widest = max(space.unit_block(i, n, o, 1).channels for n, opts in units for o in opts)
            for j in range(max(stage.depths)):
                name = units[0][0] if stage.granularity == "stage" else units[j][0]
                u = unit_index[name]
                stride = stage.stride if j == 0 else 1
                layouts = []
                for option in self.units[u].options:
                    block = replace(space.unit_block(i, name, option, stride), channels=widest)
                    layouts.append(L.layer_layout(block, i, channels, size, width, spec.act))
                gate = (depth_unit, j) if depth_unit is not None and j >= min(stage.depths) else None
                self.layers.append(MixedLayer([make_block(lay) for lay in layouts], u, gate, layouts))
                channels, size = layouts[0].out_channels, layouts[0].out_size
        self.head = make_head(L.head_layout(Head(**spec.head), channels, size, width, spec.act), num_classes)
        self.alphas = nn.ParameterList(nn.Parameter(torch.zeros(len(u.options))) for u in self.units)

    def arch_parameters(self) -> list[nn.Parameter]:
        return list(self.alphas)

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.alphas}
        return [p for p in self.parameters() if id(p) not in arch]

    def unit_weights(self, mode: str = "soft", tau: float = 1.0,
                     generator: torch.Generator | None = None) -> tuple[list[torch.Tensor], list[int | None]]:
        """Per unit: candidate weights and (hard modes) the one candidate that runs.

        ``soft``: softmax(alpha) (DARTS). ``gumbel``: a Gumbel-softmax sample at temperature
        ``tau``, one-hot forward with the soft gradient (GDAS's straight-through estimator).
        """
        weights, picks = [], []
        for alpha in self.alphas:
            if mode == "soft":
                weights.append(torch.softmax(alpha, dim=0))
                picks.append(None)
                continue
            uniform = torch.rand(alpha.shape, generator=generator).clamp_(1e-9, 1 - 1e-9).to(alpha.device)
            soft = torch.softmax((alpha - torch.log(-torch.log(uniform))) / tau, dim=0)
            index = int(soft.argmax())
            hard = torch.zeros_like(soft)
            hard[index] = 1.0
            weights.append(hard - soft.detach() + soft)
            picks.append(index)
        return weights, picks

    def forward(self, x: torch.Tensor, weights: list[torch.Tensor] | None = None,
                picks: list[int | None] | None = None) -> torch.Tensor:
        if weights is None:
            weights, picks = self.unit_weights()
        picks = picks or [None] * len(weights)
        x = self.stem(x)
        for layer in self.layers:
            out = layer(x, weights[layer.unit], picks[layer.unit])
            keep = self.presence(layer, weights)
            if keep is not None:
                out = keep * out + (1 - keep) * x
            x = out
        return self.head(x)

    def presence(self, layer: MixedLayer, weights: list[torch.Tensor]) -> torch.Tensor | None:
        """The weight of the stage depths that have ``layer`` (None: every depth has it)."""
        if layer.gate is None:
            return None
        depth_unit, j = layer.gate
        unit = self.units[depth_unit]
        return sum(w for w, option in zip(weights[depth_unit], unit.options) if option[unit.name] > j)

    def probabilities(self) -> list[torch.Tensor]:
        return [torch.softmax(a.detach(), dim=0) for a in self.alphas]

    def identity_share(self) -> float:
        """Mean probability that a searchable layer passes its input through (skip ops, layers a
        shallower depth drops): what a skip collapse drives to 1."""
        probs = self.probabilities()
        shares = []
        for layer in self.layers:
            unit = self.units[layer.unit]
            skip = float(sum(p for p, ident in zip(probs[layer.unit], unit.identity) if ident))
            keep = self.presence(layer, probs)
            if keep is not None:
                skip = 1 - float(keep) * (1 - skip)
            shares.append(skip)
        return sum(shares) / max(1, len(shares))

    def choices(self, picks: list[int] | None = None) -> Choices:
        """The space choices of ``picks`` (default: the argmax of every unit)."""
        if picks is None:
            picks = [int(p.argmax()) for p in self.probabilities()]
        choices: Choices = {}
        if len(self.space.spec.resolutions) > 1:
            choices["resolution"] = self.resolution
        if len(self.space.spec.widths) > 1:
            choices["width"] = self.width
        for unit, pick in zip(self.units, picks):
            choices.update(unit.options[pick])
        return choices

    def derive(self, picks: list[int] | None = None) -> Architecture:
        """The member of the space the architecture weights select, in canonical form."""
        return self.space.canonical(self.space.from_choices(self.choices(picks)))
