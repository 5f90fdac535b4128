"""Architectures a machine can build: refuse, before anything is allocated, what cannot run.

The grammar accepts any positive kernel, channel count and resolution, so ``mb_k99999`` or
``c99999999`` parse; building them asks for tens of gigabytes. ``check_buildable`` reads the
layout and the analytic cost (no tensors) and raises one ``ArchitectureError`` naming what is too
large and the setting that allows it.

A kernel is too large when some of its taps can never touch the feature map it meets (radius at
least the map's size): those weights multiply padding only, at any position.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from search_spaces.arch import Architecture
from search_spaces.cost import cost
from search_spaces.errors import ArchitectureError, ConfigError, describe_choices
from search_spaces.layout import NetworkLayout, resolve
from search_spaces.macro import MacroSpace, extreme_member
from search_spaces.space import SearchSpace


@dataclass(frozen=True)
class BuildLimits:
    """The largest network ``nas`` agrees to build; both far above any practical CNN by default."""

    max_params: float = field(default=1e9, metadata={"help": "refuse a space whose largest member, or a "
                                                     "baseline, has more parameters"})
    max_activation_mb: float = field(default=8192.0, metadata={
        "help": "... or more megabytes of float32 feature maps in one image's forward pass"})

    def __post_init__(self) -> None:
        for name in ("max_params", "max_activation_mb"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(f"limits.{name}: must be a positive number, got {value!r}")

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> BuildLimits:
        """From user settings (``{"max_params": "2e9"}``): names checked, numbers read."""
        values: dict[str, float] = {}
        for name, value in options.items():
            if name not in cls.__dataclass_fields__:
                raise ConfigError(describe_choices("limits option", name, list(cls.__dataclass_fields__)))
            try:
                values[name] = float(value) if isinstance(value, str) else value
            except ValueError:
                raise ConfigError(f"limits.{name}: must be a positive number, got {value!r}") from None
        return cls(**values)


NO_LIMITS = BuildLimits(math.inf, math.inf)


def activation_mb(layout: NetworkLayout) -> float:
    """Megabytes of the float32 feature maps of one image's forward pass: the stem's output, and
    each layer's inner maps (before and after its spatial convolution) and output."""
    stem = layout.stem
    elements = stem.out_channels * stem.out_size ** 2
    for layer in layout.layers:
        elements += layer.mid_channels * (layer.in_size ** 2 + layer.out_size ** 2)
        elements += layer.out_channels * layer.out_size ** 2
    return 4 * elements / 2 ** 20


def check_buildable(arch: Architecture, num_classes: int = 1000, limits: BuildLimits | None = None) -> None:
    """Raise ``ArchitectureError`` if ``arch`` cannot reasonably be built at its own resolution."""
    limits = limits or BuildLimits()
    layout = resolve(arch)
    for i, layer in enumerate(layout.layers):
        if layer.kernel // 2 >= layer.in_size and layer.kernel > 1:
            raise ArchitectureError(
                f"architecture: layer {i + 1} (stage {layer.stage + 1}) has kernel {layer.kernel} on a "
                f"{layer.in_size}x{layer.in_size} feature map; at this resolution its kernel may be at most "
                f"{max(1, 2 * layer.in_size - 1)}")
    if arch.stem.kernel // 2 >= arch.resolution and arch.stem.kernel > 1:
        raise ArchitectureError(f"architecture: the stem's kernel {arch.stem.kernel} is larger than the "
                                f"{arch.resolution}px input")
    params = cost(arch, num_classes).params
    if params > limits.max_params:
        raise ArchitectureError(f"architecture: {params:,} parameters exceed max_params={limits.max_params:.0e} "
                                f"(a setting: limits.max_params=, or nas show --max-params)")
    memory = activation_mb(layout)
    if memory > limits.max_activation_mb:
        raise ArchitectureError(f"architecture: {memory:,.0f} MB of activations per image exceed max_activation_mb="
                                f"{limits.max_activation_mb:.0f} (a setting: limits.max_activation_mb=, or nas show "
                                "--max-activation-mb)")


def check_space_buildable(space: SearchSpace, limits: BuildLimits | None = None) -> None:
    """Refuse a YAML space whose largest member (by parameters) cannot be built; other spaces
    (categorical, tabular) have no layout to check."""
    if not isinstance(space, MacroSpace):
        return
    largest = extreme_member(space, lambda a: cost(a).params, largest=True)
    try:
        check_buildable(largest, limits=limits)
    except ArchitectureError as exc:
        raise ArchitectureError(f"space {space.name}: its largest member is too large to build: "
                                f"{str(exc).removeprefix('architecture: ')}") from None
