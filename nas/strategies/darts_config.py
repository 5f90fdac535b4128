"""The settings of a DARTS search and what it returns (apart from the search, which needs torch)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from search_spaces.checks import check_int
from search_spaces.errors import ConfigError, unknown

MODES = ("gumbel", "soft")
PENALTIES = ("additive", "multiplicative")


def _option(default: Any, meaning: str) -> Any:
    """A setting that is also an option of ``strategy=darts``: its default, once, and its meaning."""
    return field(default=default, metadata={"help": meaning})


@dataclass(frozen=True)
class DartsConfig:
    """The settings of a search. Those with a meaning are the strategy's options (`options`); the
    others are fixed (the weight decays) or come from the run (``target_ms``, ``seed``)."""

    epochs: int = _option(30, "supernet training epochs")
    mode: str = _option("gumbel", "gumbel (GDAS: one sampled path per step) or soft (DARTS: all candidates)")
    order: int = _option(1, "1: first-order; 2: second-order (unrolled, mode=soft)")
    batch_size: int = _option(64, "batch size of both steps")
    # AdamW on the supernet weights, cosine schedule
    lr: float = _option(0.004, "AdamW learning rate of the supernet weights")
    weight_decay: float = 0.05
    alpha_lr: float = _option(0.01, "Adam learning rate of the architecture weights")
    alpha_weight_decay: float = 0.001
    # weights only: candidates learn something before they are judged
    warmup_epochs: int = _option(5, "epochs of weight training before the architecture weights move")
    tau_max: float = _option(5.0, "Gumbel-softmax temperature at the start")
    tau_min: float = _option(0.5, "... and at the end")
    latency_weight: float = _option(0.0, "weight of the expected-latency penalty (needs a latency table)")
    latency_penalty: str = _option("additive", "additive (ProxylessNAS) or multiplicative (FBNet/MnasNet)")
    target_ms: float | None = None  # the run's max_latency_ms
    train_resolution: int = _option(32, "pixels the supernet trains at")
    collapse_threshold: float = _option(0.6, "identity share that counts as skip collapse")
    collapse_patience: int = _option(3, "epochs of collapse before the search stops")
    amp: bool = _option(False, "bf16 autocast on CUDA")
    seed: int = 0  # the run's seed

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
        for name in ("lr", "alpha_lr"):  # written so that NaN fails too (torch's own error is a traceback)
            if not 0 < getattr(self, name) < math.inf:
                raise ConfigError(f"{name}: must be a number > 0, got {getattr(self, name)!r}")
        if not 0 < self.collapse_threshold <= 1:
            raise ConfigError(f"collapse_threshold: must be a share in (0, 1], got {self.collapse_threshold!r}")
        if not self.latency_weight >= 0 or not 0 < self.tau_min <= self.tau_max:
            raise ConfigError("latency_weight must be >= 0 and 0 < tau_min <= tau_max")


def options() -> tuple[tuple[str, Any, str], ...]:
    """(option, default, help) of every setting a user may choose, in the config's order."""
    return tuple((f.name, f.default, f.metadata["help"]) for f in fields(DartsConfig) if "help" in f.metadata)


@dataclass
class DartsResult:
    derived: Any  # the Architecture
    history: list[dict[str, Any]] = field(default_factory=list)  # per epoch: probabilities, losses
    stopped: str | None = None  # why the search stopped early (collapse guard)
    seconds: float = 0.0
