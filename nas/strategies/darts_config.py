"""The settings of a DARTS search and what it returns (apart from the search, which needs torch)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from search_spaces.checks import check_int
from search_spaces.errors import ConfigError, unknown

MODES = ("gumbel", "soft")
PENALTIES = ("additive", "multiplicative")


@dataclass(frozen=True)
class DartsConfig:
    epochs: int = 30
    mode: str = "gumbel"
    order: int = 1
    batch_size: int = 64
    lr: float = 0.004  # AdamW on the supernet weights, cosine schedule
    weight_decay: float = 0.05
    alpha_lr: float = 0.01  # Adam on the architecture weights
    alpha_weight_decay: float = 0.001
    warmup_epochs: int = 5  # weights only: candidates learn something before they are judged
    tau_max: float = 5.0
    tau_min: float = 0.5
    latency_weight: float = 0.0
    latency_penalty: str = "additive"
    target_ms: float | None = None
    train_resolution: int = 32
    collapse_threshold: float = 0.6
    collapse_patience: int = 3
    amp: bool = False  # bf16 autocast on CUDA
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise unknown("mode", self.mode, MODES)
        if self.latency_penalty not in PENALTIES:
            raise unknown("latency_penalty", self.latency_penalty, PENALTIES)
        if self.order not in (1, 2):
            raise ConfigError(f"order: 1 (first-order) or 2 (second-order, unrolled), got {self.order!r}")
        if self.order == 2 and self.mode != "soft":
            raise ConfigError("order: second-order DARTS needs mode=soft")
        for name in ("epochs", "batch_size", "train_resolution", "collapse_patience"):
            check_int(name, getattr(self, name), 1)
        if not 0 <= self.warmup_epochs < self.epochs:
            raise ConfigError(f"warmup_epochs: must be in [0, epochs), got {self.warmup_epochs!r}")
        if self.latency_weight < 0 or not 0 < self.tau_min <= self.tau_max:
            raise ConfigError("latency_weight must be >= 0 and 0 < tau_min <= tau_max")


@dataclass
class DartsResult:
    derived: Any  # the Architecture
    history: list[dict[str, Any]] = field(default_factory=list)  # per epoch: probabilities, losses
    stopped: str | None = None  # why the search stopped early (collapse guard)
    seconds: float = 0.0
