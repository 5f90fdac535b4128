"""What every evaluator is: a callable from an architecture to a flat dict of metrics."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

# What a training evaluator does after training (evaluators/quantize.py): int8 also scores the
# network after post-training static quantization.
QUANTIZE = ("none", "int8")

# Called by long evaluations after each epoch/step: (step, metrics so far). It may raise
# `TrialPruned` to stop the evaluation early (Optuna pruners, Ray Tune's ASHA).
Reporter = Callable[[int, dict[str, float]], None]


class TrialPruned(Exception):
    """Raised through a reporter to stop an evaluation that is not worth finishing."""


# The data a run trains on when it names none: scikit-learn's bundled handwritten digits (real
# images, offline, no download). Read-only: take ``dict(DEFAULT_DATA)`` to add options to it.
DEFAULT_DATA: Mapping[str, Any] = MappingProxyType({"name": "digits"})


class Evaluator(ABC):
    """``evaluator(arch, report=None, repeat=0) -> {"accuracy": ..., "params": ..., ...}``.

    One abstract member, ``__call__``, and a ``name``; everything else a run asks of an evaluator
    is declared here once, with the default that holds when an evaluator says nothing (as Optuna's
    ``BaseSampler`` does: few abstract members, optional hooks with defaults). A user's object or
    function that does not derive from this class is adapted to it (``evaluators.registry``).

    ``repeat`` numbers the evaluations of one architecture: a noisy evaluator (``noisy = True``)
    draws each repeat independently (another training seed, another stored benchmark seed), and the
    same repeat of the same architecture gives the same draw. An evaluator with ``noisy = False``
    returns the same numbers for every repeat, so a run never spends budget repeating it.
    """

    name: str
    noisy: bool = True
    # Whether it trains each candidate (seconds each): a run then measures latency beside it by
    # default, and max_latency_ms=baseline applies (the timing adds little to the training).
    trains: bool = False
    # The classes of the networks it builds: the classifier's share of params, MACs and latency
    # known before training; ImageNet's 1000 when it builds none.
    num_classes: int = 1000
    # The objectives of a run that names none (a zero-cost score is no accuracy); () for the run's own.
    default_objectives: tuple[str, ...] = ()

    @abstractmethod
    def __call__(self, arch: Any, report: Reporter | None = None, repeat: int = 0) -> dict[str, float]: ...


# The optional attributes above, read from the class so a new one is never listed twice.
HOOKS = tuple(name for name, value in vars(Evaluator).items() if not name.startswith("_") and not callable(value))


class Wrapper(Evaluator):
    """An evaluator around another (adding metrics, adapting a call): the inner one's name and
    hooks, where it states them, and every other attribute of it; ``__call__`` is the wrapper's."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = str(inner.name)
        for hook in HOOKS:
            # Read once here, where a user's object enters, so that nothing later has to probe it.
            if hasattr(inner, hook):
                setattr(self, hook, getattr(inner, hook))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "inner":  # unpickling (Ray) looks before inner is set
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return repr(self.inner)


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
