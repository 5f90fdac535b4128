"""What every evaluator is: a callable from an architecture to a flat dict of metrics."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

# What a training evaluator does after training (evaluators/quantize.py): int8 also scores the
# network after post-training static quantization.
QUANTIZE = ("none", "int8")

# Called by long evaluations after each epoch/step: (step, metrics so far). It may raise
# `TrialPruned` to stop the evaluation early (Optuna pruners, Ray Tune's ASHA).
Reporter = Callable[[int, dict[str, float]], None]


class TrialPruned(Exception):
    """Raised through a reporter to stop an evaluation that is not worth finishing."""


@runtime_checkable
class Evaluator(Protocol):
    """``evaluator(arch, report=None, repeat=0) -> {"accuracy": ..., "params": ..., ...}``.

    ``repeat`` numbers the evaluations of one architecture: a noisy evaluator (``noisy = True``)
    draws each repeat independently (another training seed, another stored benchmark seed), and the
    same repeat of the same architecture gives the same draw. An evaluator with ``noisy = False``
    returns the same numbers for every repeat, so a run never spends budget repeating it.
    """

    name: str
    noisy: bool

    def __call__(self, arch: Any, report: Reporter | None = None, repeat: int = 0) -> dict[str, float]: ...


@runtime_checkable
class ChecksSpace(Protocol):
    """An evaluator that scores only some spaces (a tabular benchmark, a supernet's own space, an
    image-size limit) refuses the others with one line before a run writes anything."""

    def check_space(self, space: Any) -> None: ...


class EvaluationFailed(Exception):
    """An evaluation that cannot give a result; ``reason`` goes into the trial row (e.g. diverged)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
