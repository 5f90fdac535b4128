"""The ask/tell protocol every search strategy speaks, and the problem it is asked to solve."""
from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from search_spaces.space import SearchSpace


@dataclass(frozen=True)
class Objective:
    """A metric to optimise: ``Objective("accuracy", "max")``."""

    metric: str
    direction: str = "max"

    def sign(self) -> float:
        """+1 when larger is better, -1 when smaller is better (to turn everything into maximise)."""
        return 1.0 if self.direction == "max" else -1.0


@dataclass(frozen=True)
class Problem:
    """Objectives, upper-bound constraints, and the costs known before any training.

    ``estimate(arch)`` returns metrics that cost nothing to know (params, MACs, predicted latency),
    so that a strategy can refuse an infeasible candidate before budget is spent on it.
    """

    objectives: tuple[Objective, ...] = (Objective("accuracy", "max"),)
    constraints: Mapping[str, float] = field(default_factory=dict)  # metric -> maximum allowed
    estimate: Callable[[Any], Mapping[str, float]] | None = None

    def violation(self, metrics: Mapping[str, Any]) -> float:
        """Sum of relative constraint violations (0 when feasible); unknown metrics count as 0."""
        total = 0.0
        for metric, bound in self.constraints.items():
            value = metrics.get(metric)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            if value > bound:
                total += (value - bound) / max(abs(bound), 1e-12)
        return total

    def known_infeasible(self, arch: Any) -> bool:
        """True when the costs known before training already break a constraint."""
        if not self.constraints or self.estimate is None:
            return False
        return self.violation(self.estimate(arch)) > 0


class Strategy(ABC):
    """Ask/tell search strategy; its whole state is JSON so a run can resume or move machines.

    - ``ask(n)`` proposes up to ``n`` members the strategy has not proposed before (up to the
      space's ``canonical`` equivalence) and that are not known to be infeasible;
    - ``tell(arch, metrics)`` reports the outcome; ``metrics["status"]`` is ``"ok"`` or
      ``"failed"`` (failed trials carry no objective values);
    - ``state_dict()`` / ``load_state_dict()`` round-trip through ``json.dumps``.
    """

    name: ClassVar[str]
    run_dir: Path | None = None  # the run's folder, set before the search starts (DARTS writes its history there)

    def __init__(self, space: SearchSpace, problem: Problem | None = None, seed: int = 0) -> None:
        self.space = space
        self.problem = problem or Problem()
        self.seed = seed
        self.rng = random.Random(seed)
        self.seen: set[str] = set()  # keys proposed so far (evaluated, pending or rejected)
        self.rejected = 0  # proposals refused because their known costs break a constraint

    def bind(self, data: Mapping[str, Any] | None, latency: Any = None) -> None:
        """The run's data settings and latency source, before anything is written: a strategy that
        trains on the run's data (DARTS) checks and keeps them; the others need neither."""

    def _claim(self, arch: Any) -> bool:
        """Reserve a candidate: False if its key was seen or it is known to be infeasible."""
        key = self.space.key(arch)
        if key in self.seen:
            return False
        self.seen.add(key)
        if self.problem.known_infeasible(arch):
            self.rejected += 1
            return False
        return True

    def _base_state(self) -> dict[str, Any]:
        version, internal, gauss = self.rng.getstate()
        return {
            "rng": [version, list(internal), gauss],
            "seen": sorted(self.seen),
            "rejected": self.rejected,
        }

    def _load_base_state(self, state: Mapping[str, Any]) -> None:
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
        self.seen = set(state["seen"])
        self.rejected = state["rejected"]

    def objective_values(self, metrics: Mapping[str, Any]) -> tuple[float, ...] | None:
        """Objective values turned into 'larger is better', or None if any is missing/NaN."""
        values = []
        for objective in self.problem.objectives:
            value = metrics.get(objective.metric)
            if value is None or not isinstance(value, (int, float)) or math.isnan(value):
                return None
            values.append(objective.sign() * float(value))
        return tuple(values)

    @abstractmethod
    def ask(self, n: int = 1) -> list[Any]: ...

    @abstractmethod
    def tell(self, arch: Any, metrics: Mapping[str, Any]) -> None: ...

    def retell(self, arch: Any, metrics: Mapping[str, Any]) -> None:
        """A network told before was evaluated again: ``metrics`` are its means over every
        evaluation so far. A strategy that keeps scores (a population, a model) replaces the old
        ones; the default ignores it."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]: ...

    @abstractmethod
    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...

    @classmethod
    def options(cls) -> Sequence[tuple[str, Any, str]]:
        """(option, default, help) for ``nas strategies``."""
        return ()
