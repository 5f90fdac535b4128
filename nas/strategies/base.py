"""The ask/tell protocol every search strategy speaks, and the problem it is asked to solve."""
from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from search_spaces.registries import signature_options
from search_spaces.space import SearchSpace

# What every strategy's __init__ takes before its options (not options a user sets).
STRATEGY_PARAMETERS = ("space", "problem", "seed")


@dataclass(frozen=True)
class Objective:
    """A metric to optimise: ``Objective("accuracy", "max")``."""

    metric: str
    direction: str = "max"

    def sign(self) -> float:
        """+1 when larger is better, -1 when smaller is better (to turn everything into maximise)."""
        return 1.0 if self.direction == "max" else -1.0


class NearestMiss:
    """Of the proposals refused before evaluation, the one that came closest to the constraints
    (the least total relative violation): what the progress line shows beside the refusals, e.g.
    ``23.1 ms > 20 ms``. One object is shared by a problem and every problem derived from it with
    ``dataclasses.replace`` (a bound added, an estimate extended), so every refusal counts."""

    def __init__(self) -> None:
        # (violation, metric it broke most, its value, the bound); one tuple, replaced whole, as
        # a strategy running its own thread (NNI's) notes refusals while the run reads it
        self.nearest: tuple[float, str, float, float] | None = None

    def note(self, violation: float, metrics: Mapping[str, Any], constraints: Mapping[str, float]) -> None:
        if self.nearest is not None and not violation < self.nearest[0]:
            return
        broken = [((float(metrics[m]) - b) / max(abs(b), 1e-12), m, float(metrics[m]), float(b))
                  for m, b in constraints.items()
                  if isinstance(metrics.get(m), (int, float)) and metrics[m] > b]
        if broken:
            _, metric, value, bound = max(broken)
            self.nearest = (violation, metric, value, bound)

    def describe(self) -> str:
        """``23.1 ms > 20 ms`` (latency), ``params 3.21M > 3M`` (other metrics); "" before any."""
        if self.nearest is None:
            return ""
        _, metric, value, bound = self.nearest
        if metric.startswith("latency") and metric.endswith("_ms"):
            kind = " int8" if "int8" in metric else ""
            return f"{value:.3g} ms{kind} > {bound:.3g} ms"
        return f"{metric} {_short(value)} > {_short(bound)}"

    def state(self) -> list[Any] | None:
        return list(self.nearest) if self.nearest is not None else None

    def load(self, state: Sequence[Any] | None) -> None:
        if state:
            violation, metric, value, bound = state
            self.nearest = (float(violation), str(metric), float(value), float(bound))


def _short(value: float) -> str:
    """3 significant digits, thousands as K, M, G (parameter and MAC counts)."""
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.3g}"


@dataclass(frozen=True)
class Problem:
    """Objectives, upper-bound constraints, and the costs known before any training.

    ``estimate(arch)`` returns metrics that cost nothing to know (params, MACs, predicted latency),
    so that a strategy can refuse an infeasible candidate before budget is spent on it; ``misses``
    keeps the refused proposal that came closest.
    """

    objectives: tuple[Objective, ...] = (Objective("accuracy", "max"),)
    constraints: Mapping[str, float] = field(default_factory=dict)  # metric -> maximum allowed
    estimate: Callable[[Any], Mapping[str, float]] | None = None
    misses: NearestMiss = field(default_factory=NearestMiss, compare=False, repr=False)

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
        known = self.estimate(arch)
        violation = self.violation(known)
        if violation > 0:  # every refusal before evaluation asks here: the closest one is kept
            self.misses.note(violation, known, self.constraints)
        return violation > 0


class Strategy(ABC):
    """Ask/tell search strategy; its whole state is JSON so a run can resume or move machines.

    - ``ask(n)`` proposes up to ``n`` members the strategy has not proposed before (up to the
      space's ``canonical`` equivalence) and that are not known to be infeasible;
    - ``tell(arch, metrics)`` reports the outcome; ``metrics["status"]`` is ``"ok"`` or
      ``"failed"`` (failed trials carry no objective values);
    - ``state_dict()`` / ``load_state_dict()`` round-trip through ``json.dumps``.

    The members a run uses beside these are declared here once, with their defaults: ``bind``
    (the run's data, latency source and folder), ``report`` (intermediate metrics, for a strategy
    that listens), ``rejected`` (proposals refused before evaluation) and ``close``. A strategy's
    options are its ``__init__``'s keyword parameters after ``seed``, read from the signature
    (``options()``), so each default is written once: in that signature; ``option_help`` says
    what each one means.
    """

    name: ClassVar[str]
    option_help: ClassVar[Mapping[str, str]] = {}  # option -> one line for ``nas strategies``
    run_dir: Path | None = None  # the run's folder, given by bind before the search starts
    # ``report(arch, step, metrics)``: a strategy that learns from an evaluation's intermediate
    # metrics defines it as a method. None: nobody listens, so a training evaluator is not asked
    # to validate after every epoch.
    report: Callable[[Any, int, Mapping[str, float]], None] | None = None

    def __init__(self, space: SearchSpace, problem: Problem | None = None, seed: int = 0) -> None:
        self.space = space
        self.problem = problem or Problem()
        self.seed = seed
        self.rng = random.Random(seed)
        self.seen: set[str] = set()  # keys proposed so far (evaluated, pending or rejected)
        self.rejected = 0  # proposals refused because their known costs break a constraint

    def bind(self, data: Mapping[str, Any] | None, latency: Any = None, run_dir: Path | None = None) -> None:
        """The run's data settings and latency source, checked before anything is written, and
        (once it exists) the run's folder: a strategy that trains on the run's data (DARTS) checks
        and keeps them and writes its history into the folder; the others need none of them."""
        if run_dir is not None:
            self.run_dir = Path(run_dir)

    def close(self) -> None:
        """Release what the strategy holds when the run ends (NNI's thread); the default holds nothing."""

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
        """(option, default, help) of each option, in order: ``__init__``'s keyword parameters
        after ``seed`` with their defaults, and ``option_help``'s lines. A strategy whose options
        are not parameters of its own (NNI's, passed on as ``**options``) states them here instead."""
        found = signature_options(cls, reserved=STRATEGY_PARAMETERS)
        return tuple((o.name, o.default, cls.option_help.get(o.name, "")) for o in found.options)
