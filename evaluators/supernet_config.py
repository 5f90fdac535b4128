"""How a supernet is trained: a value, free of torch, so that ``nas supernet --help`` and the settings'
checks need no torch."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from evaluators.train_config import TrainConfig
from search_spaces.checks import check_int
from search_spaces.errors import ConfigError

SAMPLING = ("fair", "sandwich", "uniform")
REGULARIZE = ("largest", "all")
SHRINK = ("none", "progressive")
# Once-for-All's progressive shrinking, in its order: the largest member alone (at every resolution),
# then elastic kernels, then elastic depth, then everything (expansion, SE, width, block types).
PHASES = ("largest", "kernel", "depth", "all")
# the dimension fields (a choice's name after its stage: ``s3.kernel`` -> ``kernel``) each phase lets
# vary; resolution varies in every phase, and `all` lets every choice vary
OPENS: dict[str, frozenset[str]] = {"largest": frozenset(), "kernel": frozenset({"kernel"}),
                                    "depth": frozenset({"kernel", "depth"})}


@dataclass(frozen=True)
class SupernetConfig:
    """How a supernet is trained."""

    epochs: int = 11  # what it costs on 2 cores: docs/oneshot.md
    batch_size: int = 64
    optimizer: str = "adamw"  # or sgd (Nesterov, with momentum)
    lr: float = 0.004
    momentum: float = 0.9
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    sampling: str = "sandwich"  # BigNAS/OFA's rule; fair: the largest + kind-balanced members; uniform: SPOS
    random_subnets: int = 2  # sandwich, fair: random members per step besides the largest (and smallest)
    distill: bool = True  # fair, sandwich: the other members learn from the largest one's predictions
    resolution: int | None = 32  # pixels the space's base resolution trains at (None: its own)
    zero_init: bool = True  # residual blocks start as the identity, the classifier at 0 (BigNAS)
    regularize: str = "largest"  # dropout and stochastic depth for: the largest member | all members
    shrink: str = "none"  # progressive: the epochs split evenly over PHASES, in order (Once-for-All)
    # sandwich, fair: the largest member also once per other kind of weights (for mbconv: every stage at
    # expansion 1), so weights the largest member never uses train every step too
    largest_per_kind: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.sampling not in SAMPLING:
            raise ConfigError(f"sampling: {self.sampling!r} is not one of {', '.join(SAMPLING)}")
        if self.regularize not in REGULARIZE:
            raise ConfigError(f"regularize: {self.regularize!r} is not one of {', '.join(REGULARIZE)}")
        if self.shrink not in SHRINK:
            raise ConfigError(f"shrink: {self.shrink!r} is not one of {', '.join(SHRINK)}")
        for name in ("epochs", "batch_size"):
            check_int(name, getattr(self, name), 1)
        check_int("random_subnets", self.random_subnets, 0)
        check_int("resolution", self.resolution, 8, allow_none=True)
        if self.shrink == "progressive" and self.epochs < len(PHASES):
            raise ConfigError(f"epochs: shrink=progressive needs at least {len(PHASES)} (one per phase: "
                              f"{', '.join(PHASES)}), got {self.epochs}")
        self.train_config()  # lr, weight_decay, warmup, label smoothing checked there

    def phase(self, epoch: int) -> str:
        """Which of PHASES epoch ``epoch`` (from 0) trains in: ``all`` without shrinking; with
        ``shrink=progressive`` the epochs split evenly over the phases, the last taking the remainder."""
        if self.shrink == "none":
            return "all"
        share = self.epochs // len(PHASES)
        return PHASES[min(epoch // share, len(PHASES) - 1)]

    def train_config(self) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, optimizer=self.optimizer, lr=self.lr,
                           momentum=self.momentum, weight_decay=self.weight_decay, warmup_epochs=self.warmup_epochs,
                           label_smoothing=self.label_smoothing, channels_last=False)


def supernet_defaults() -> dict[str, Any]:
    """The training settings and their defaults."""
    return {f.name: f.default for f in fields(SupernetConfig)}
