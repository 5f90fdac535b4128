"""`LatencyTable`: per-part latencies of one fingerprint; a network's latency is their calibrated sum.

Timed alone, a part misses what a whole network adds or saves (framework dispatch between parts,
caches warm from the previous part), so the sum is mapped to whole-network latency by
``scale * sum + offset``, fitted on measured networks to minimise relative error.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from evaluators.latency.fingerprint import Fingerprint
from evaluators.latency.parts import network_keys
from search_spaces.arch import Architecture
from search_spaces.errors import ConfigError


@dataclass(frozen=True)
class Calibration:
    scale: float = 1.0
    offset_ms: float = 0.0
    networks: int = 0  # how many measured networks it was fitted on

    def __call__(self, block_sum_ms: float | np.ndarray) -> float | np.ndarray:
        return self.scale * block_sum_ms + self.offset_ms


def fit_calibration(block_sums: Sequence[float], measured: Sequence[float]) -> Calibration:
    """Least squares on relative error: minimise sum(((scale * s + offset) - m) / m)^2."""
    s, m = np.asarray(block_sums, float), np.asarray(measured, float)
    if len(s) < 2:
        raise ConfigError("latency calibration: needs at least 2 measured networks")
    design = np.column_stack([s / m, 1.0 / m])
    (scale, offset), *_ = np.linalg.lstsq(design, np.ones_like(m), rcond=None)
    return Calibration(float(scale), float(offset), len(s))


@dataclass
class LatencyTable:
    """Median latency (ms) of each part of a space's networks, measured under ``fingerprint``."""

    fingerprint: Fingerprint
    entries: dict[str, float] = field(default_factory=dict)
    calibration: Calibration = field(default_factory=Calibration)

    def missing(self, arch: Architecture, num_classes: int) -> list[str]:
        return [k for k in dict.fromkeys(network_keys(arch, num_classes)) if k not in self.entries]

    def block_sum(self, arch: Architecture, num_classes: int) -> float:
        """Sum of the parts' latencies (uncalibrated)."""
        try:
            return sum(self.entries[k] for k in network_keys(arch, num_classes))
        except KeyError as exc:
            raise ConfigError(
                f"latency table ({self.fingerprint.slug}) has no entry for {exc.args[0]}; profile the "
                "space this architecture comes from (nas latency profile space=...)"
            ) from None

    def predict(self, arch: Architecture, num_classes: int) -> float:
        """Predicted latency of the whole network in ms."""
        return float(self.calibration(self.block_sum(arch, num_classes)))

    def update(self, measured: Mapping[str, float]) -> None:
        self.entries.update(measured)
