"""How a winner is retrained: the recipe (optimiser, schedule, augmentation, EMA, workers) and its checks."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from evaluators.train_config import TrainConfig
from search_spaces.checks import check_auto, check_int
from search_spaces.errors import ConfigError, unknown

AUGMENTS = ("none", "randaugment", "autoaugment")
# Settings that only say where and how wide the run executes; a resumed run may change them.
EXECUTION_FIELDS = ("workers", "use_gpu", "cpus_per_worker", "max_failures")
STATE_FILE = "state.pt"  # inside each Ray Train checkpoint directory


@dataclass(frozen=True)
class RetrainRecipe:
    """How the winner is trained (``batch`` is the global batch, split evenly across workers)."""

    epochs: int = 30
    batch: int = 128
    optimizer: str = "adamw"
    lr: float = 0.004
    weight_decay: float = 0.05
    momentum: float = 0.9  # SGD only
    warmup_epochs: float = 2.0
    label_smoothing: float = 0.1
    augment: str = "none"  # none | randaugment | autoaugment (torchvision.transforms.v2)
    ema: float | None = None  # decay of an exponential moving average of the weights; None: off
    amp: bool | str = "auto"  # bf16 autocast; auto: on with CUDA
    channels_last: bool | str = "auto"  # NHWC tensors; auto: on
    resolution: int | None = None  # training pixels; None: the architecture's own
    seed: int = 0
    workers: int = 1  # Ray Train workers (DDP processes)
    use_gpu: bool | str = "auto"  # one GPU per worker; auto: when the Ray cluster has GPUs
    cpus_per_worker: int | None = None  # None: the cluster's CPUs shared among the workers
    max_failures: int = 1  # restarts from the latest checkpoint after a worker dies

    def __post_init__(self) -> None:
        if self.ema == "none":
            object.__setattr__(self, "ema", None)
        check_int("batch", self.batch, 1)
        self.train_config(self.batch)  # TrainConfig checks the fields the two share
        if self.augment not in AUGMENTS:
            raise unknown("augment", self.augment, AUGMENTS)
        if self.ema is not None and (isinstance(self.ema, bool) or not isinstance(self.ema, (int, float))
                                     or not 0 < self.ema < 1):
            raise ConfigError(f"ema: must be a decay in (0, 1) or none, got {self.ema!r}")
        for name in ("amp", "channels_last", "use_gpu"):
            check_auto(name, getattr(self, name))
        check_int("resolution", self.resolution, 8, allow_none=True)
        check_int("seed", self.seed, 0)
        check_int("workers", self.workers, 1)
        check_int("cpus_per_worker", self.cpus_per_worker, 1, allow_none=True)
        check_int("max_failures", self.max_failures, 0)
        if self.batch % self.workers:
            raise ConfigError(f"batch: the global batch {self.batch} must be divisible by workers={self.workers}")

    def train_config(self, batch_size: int, cuda: bool = False) -> TrainConfig:
        """The per-worker ``TrainConfig`` the project's training helpers take."""
        return TrainConfig(
            epochs=self.epochs, batch_size=batch_size, optimizer=self.optimizer, lr=self.lr,
            weight_decay=self.weight_decay, momentum=self.momentum, warmup_epochs=self.warmup_epochs,
            label_smoothing=self.label_smoothing,
            amp=cuda if self.amp == "auto" else bool(self.amp),
            channels_last=True if self.channels_last == "auto" else bool(self.channels_last),
        )


def make_recipe(overrides: Mapping[str, Any], base: RetrainRecipe | None = None) -> RetrainRecipe:
    """``base`` (default: the defaults) with ``overrides``; unknown names are one-line errors."""
    names = [f.name for f in fields(RetrainRecipe)]
    for key in overrides:
        if key not in names:
            raise unknown("recipe key", key, names)
    return replace(base or RetrainRecipe(), **dict(overrides))
