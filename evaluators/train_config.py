"""How a network is trained: a value, free of torch, so that commands can show and check a recipe
(``nas retrain --help``, a run's settings) without loading torch."""
from __future__ import annotations

from dataclasses import dataclass

from search_spaces.checks import check_int
from search_spaces.errors import ConfigError

OPTIMIZERS = ("adamw", "sgd")


@dataclass(frozen=True)
class TrainConfig:
    """How a network is trained."""

    epochs: int = 3
    steps: int | None = None  # optimizer steps instead of epochs (the last epoch may be partial)
    batch_size: int = 64
    optimizer: str = "adamw"
    lr: float = 0.004
    weight_decay: float = 0.05
    momentum: float = 0.9  # SGD only
    warmup_epochs: float = 0.5
    label_smoothing: float = 0.1
    amp: bool = False  # bf16 autocast (CUDA only)
    bn_recalibration: int = 0  # training batches to re-estimate BN statistics before evaluating
    # NHWC tensors: oneDNN's CPU convolutions (depthwise above all) run 2-2.5x faster on this
    # space's networks than in NCHW, and cuDNN prefers it under bf16 too.
    channels_last: bool = True

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer: {self.optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
        for name in ("epochs", "batch_size"):
            check_int(name, getattr(self, name), 1)
        check_int("steps", self.steps, 1, allow_none=True)
        check_int("bn_recalibration", self.bn_recalibration, 0)
        for name in ("lr", "weight_decay", "warmup_epochs", "label_smoothing", "momentum"):
            value = getattr(self, name)
            # written so that NaN fails too: it would train every candidate to a failed row
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ConfigError(f"{name}: must be a number >= 0, got {value!r}")
        if not self.lr > 0:
            raise ConfigError(f"lr: must be > 0, got {self.lr!r}")
        if self.label_smoothing >= 1:
            raise ConfigError(f"label_smoothing: must be in [0, 1), got {self.label_smoothing!r}")
