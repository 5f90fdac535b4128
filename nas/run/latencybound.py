"""``max_latency_ms=baseline``: a run bounded by the latency of its first baseline on this machine.

An accuracy-only search rewards size, so its winner tends to be slower than the reference it is
compared with; "more accurate" then says little. Bounded by the baseline's own latency, timed
under the run's latency settings, the run answers "more accurate than the baseline at the
baseline's speed here?". It is the default (``RunSettings``) where it applies without slowing a run
down: networks to time, a baseline, and an evaluator that trains (timing then adds little); typed
explicitly it applies to any run that can time its candidates, and where it cannot it is an error.

The bound is resolved once, when a fresh run starts, and kept in its ``config.yaml``
(``latency_bound``) so that a resumed run keeps it without measuring again.
"""
from __future__ import annotations

import logging
import math
import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from evaluators.base import Evaluator
from nas.run.problem import CONSTRAINT_SHORTCUTS, latency_metric, parse_constraints
from nas.run.trial import Baseline
from nas.strategies.base import Problem
from search_spaces.arch import Architecture
from search_spaces.errors import ConfigError
from search_spaces.space import SearchSpace

log = logging.getLogger(__name__)

BASELINE = "baseline"  # max_latency_ms=baseline
# Objectives that already make a run latency-aware: the default bound leaves them alone.
LATENCY_METRICS = frozenset({"latency_ms", "latency_int8_ms", "mnas"})


@dataclass(frozen=True)
class LatencyBound:
    """A resolved ``max_latency_ms=baseline``: the bound and where it came from."""

    ms: float
    metric: str  # latency_ms, or latency_int8_ms with quantize=int8
    baseline: str  # the baseline's name (efficientnet_b0)
    arch: str  # its key in the run (its row in trials.csv)
    source: str  # how its latency was known: measured, or a table / learned predictor's prediction
    setup: str  # the latency settings it was timed under (fingerprint.describe())

    @property
    def origin(self) -> str:
        """``efficientnet_b0 measured on this machine``."""
        int8 = " int8" if self.metric == "latency_int8_ms" else ""
        how = ("measured on this machine" if self.source == "measured"
               else f"as the {self.source} latency profile predicts it")
        return f"{self.baseline}{int8} {how}"

    def describe(self) -> str:
        """``latency bound 20.3 ms = efficientnet_b0 measured on this machine``."""
        what = "int8 latency bound" if self.metric == "latency_int8_ms" else "latency bound"
        return f"{what} {self.ms:.3g} ms = {self.origin}"

    def to_config(self) -> dict[str, Any]:
        return {**asdict(self), "text": self.describe()}

    @classmethod
    def from_config(cls, saved: Any) -> LatencyBound:
        """The bound a run recorded in its config.yaml; ConfigError when it cannot be read."""
        try:
            bound = cls(**{k: saved[k] for k in ("ms", "metric", "baseline", "arch", "source", "setup")})
            ms = float(bound.ms)
        except (TypeError, KeyError, ValueError):
            raise ConfigError(f"latency_bound: the run's config.yaml records an unreadable bound "
                              f"({saved!r})") from None
        if not ms > 0 or math.isinf(ms):
            raise ConfigError(f"latency_bound: the run's config.yaml records a bound of {saved.get('ms')!r} ms")
        return replace(bound, ms=ms)


def bound_setting(value: Any) -> float | str | None:
    """``max_latency_ms`` as given: a number of ms, ``baseline``, or no bound (None / ``none``)."""
    if value is None or value == "none":
        return None
    if value == BASELINE:
        return BASELINE
    if not isinstance(value, bool):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not math.isnan(number):
            return number
    raise ConfigError(f"max_latency_ms: expected a number of milliseconds, baseline or none, got {value!r}")


def bound_target(cfg: Mapping[str, Any], explicit: set[str], problem: Problem, space: SearchSpace,
                 evaluator: Evaluator, baselines: list[Baseline]) -> Baseline | None:
    """The baseline whose latency bounds the run, or None when ``max_latency_ms`` is not
    ``baseline`` or (as the default) it does not apply. Typed explicitly, a bound that cannot
    apply is a one-line ConfigError."""
    if cfg.get("max_latency_ms") != BASELINE:
        return None
    typed = "max_latency_ms" in explicit
    metric = latency_metric(cfg.get("quantize") == "int8")
    why = _cannot(cfg, space, baselines, problem, metric)
    if why:
        if typed:
            raise ConfigError(f"max_latency_ms=baseline: {why}")
        return None
    if not typed:
        # The default stays out of runs that are latency-aware already or would be slowed down.
        if not evaluator.trains:
            return None  # timing every candidate would cost more than evaluating it
        if {o.metric for o in problem.objectives} & LATENCY_METRICS or (cfg.get("strategy") or {}).get(
                "latency_weight"):
            return None
    return baselines[0]


def _cannot(cfg: Mapping[str, Any], space: SearchSpace, baselines: list[Baseline], problem: Problem,
            metric: str) -> str:
    """Why a baseline bound cannot apply to this run ('' when it can)."""
    if not isinstance(space.sample(random.Random(0)), Architecture):
        return f"space {space.name} has no networks to time (not Architectures); give a number of ms or none"
    if (cfg.get("latency") or {}).get("name") == "none":
        return "latency=none times no candidate; use latency=auto, measured, table or learned"
    if not baselines:
        spec = cfg.get("baselines")
        why = "baselines=none" if spec in (None, "none", []) else f"space {space.name} names none"
        return (f"the run has no baseline ({why}); name one (baselines=[efficientnet_b0]) or give a "
                "number of ms")
    if metric in problem.constraints:
        return (f"constraints.{metric}={problem.constraints[metric]:g} bounds {metric} already; keep one of "
                "the two")
    return ""


def resolve_bound(target: Baseline, source: Any, metric: str) -> LatencyBound:
    """The latency of ``target`` under the run's latency settings (``source``: the LatencySource
    that times the run's candidates on ``metric``).

    Measured here whenever the settings are this machine's: a measured source memoises it, so the
    baseline's own row reports this very number (no timing noise between the bound and the
    baseline), and with a table or learned predictor the bound is still a measurement rather than
    a prediction of a network the profile may not cover. A profile of another machine
    (``latency.profile=DIR``) cannot be measured here: its prediction is the bound.
    """
    if source.source == "measured" or not source.local:
        ms, how = source(target.arch), source.source
    else:
        ms, how = source.measurer.network(target.arch, source.num_classes).latency_ms, "measured"
    bound = LatencyBound(float(ms), metric, target.name, target.key, how, source.fingerprint.describe())
    log.info("%s (%s)", bound.describe(), bound.setup)
    return bound


def with_bound(problem: Problem, metric: str, ms: float) -> Problem:
    """``problem`` with ``metric <= ms`` among its constraints."""
    return replace(problem, constraints={**problem.constraints, metric: float(ms)})


def saved_constraints(config: Mapping[str, Any]) -> dict[str, float]:
    """The constraints a run had, from its config.yaml (``max_latency_ms=baseline``: the number it
    resolved to, dropped when it recorded none); ConfigError when a value is unreadable."""
    shortcuts = {k: config.get(k) for k in CONSTRAINT_SHORTCUTS}
    int8 = config.get("quantize") == "int8"
    setting = bound_setting(shortcuts["max_latency_ms"])
    if setting == BASELINE:
        recorded = config.get("latency_bound")
        setting = LatencyBound.from_config(recorded).ms if recorded else None
    shortcuts["max_latency_ms"] = setting
    return parse_constraints(config.get("constraints") or {}, int8, **shortcuts)
