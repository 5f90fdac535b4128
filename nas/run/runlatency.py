"""Where a run's latency comes from: the source (measured, table, learned) its settings ask for,
MnasNet's reward settings, and latency among the costs known before training."""
from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from evaluators.base import Evaluator
from nas.strategies.base import Problem
from search_spaces.arch import Architecture
from search_spaces.errors import ConfigError, unknown
from search_spaces.macro import MacroSpace
from search_spaces.space import SearchSpace


def needs_latency(problem: Problem, cfg: Mapping[str, Any] | None = None) -> bool:
    if cfg is not None and (cfg.get("strategy") or {}).get("latency_weight", 0):
        return True  # DARTS' latency-aware loss
    return bool({"latency_ms", "mnas"} & ({o.metric for o in problem.objectives} | set(problem.constraints)))


def latency_source(cfg: dict[str, Any], problem: Problem, space: SearchSpace, evaluator: Evaluator) -> Any:
    """Where each candidate's latency_ms comes from (None: nowhere), checked before anything is written."""
    from evaluators.latency.source import (  # noqa: PLC0415 - torch: nas.search is torch-free until it times
        SOURCES,
        LatencySource,
        latency_settings,
    )

    options = dict(cfg.get("latency") or {"name": "auto"})
    name = options.get("name", "auto")
    if name not in SOURCES:
        raise unknown("latency", name, SOURCES)
    if name == "none":
        return None
    if not isinstance(space.sample(random.Random(0)), Architecture):
        if name != "auto":
            raise ConfigError(f"latency={name}: space {space.name} has no networks to time (not Architectures)")
        return None
    num_classes = options.get("num_classes") or int(evaluator.num_classes)
    settings = latency_settings({k: v for k, v in options.items() if k != "name"})
    # A training evaluator spends seconds per candidate: timing it too costs little.
    needed = needs_latency(problem, cfg) or evaluator.trains
    if name == "auto":
        if not isinstance(space, MacroSpace) or not has_profile(cfg, settings):
            name = "measured" if needed else "none"
    elif name in ("table", "learned") and not isinstance(space, MacroSpace):
        raise ConfigError(f"latency={name}: tables are built for YAML spaces; use latency=measured")
    if name == "none":
        return None
    source = LatencySource(name, space, num_classes, settings, out=cfg["out"], profile=options.get("profile"))
    if source.source == "measured" and not needed and name == "auto":
        return None  # no table for this space and nobody asked: do not time every candidate
    return source


def int8_latency_source(cfg: dict[str, Any], problem: Problem, space: SearchSpace, evaluator: Evaluator) -> Any:
    """Where each candidate's latency_int8_ms comes from with ``quantize=int8``: the run's latency
    settings at dtype int8 (its own profile and fingerprint; measured when there is none)."""
    return latency_source({**cfg, "latency": {**(cfg.get("latency") or {}), "dtype": "int8"}}, problem, space,
                          evaluator)


def has_profile(cfg: Mapping[str, Any], settings: Any) -> bool:
    from evaluators.latency.store import ProfileStore  # noqa: PLC0415 - torch (the latency package)

    if (cfg.get("latency") or {}).get("profile"):
        return True
    if cfg["out"] is None:
        return False
    return ProfileStore.for_fingerprint(cfg["out"], settings.fingerprint()).exists


def mnas_reward(cfg: Mapping[str, Any], problem: Problem) -> tuple[float, float] | None:
    """(target_ms, w) of MnasNet's reward when an objective is ``mnas``."""
    if "mnas" not in [o.metric for o in problem.objectives]:
        return None
    options = cfg.get("latency") or {}
    target, w = options.get("target_ms"), options.get("w", -0.07)
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not target > 0:
        raise ConfigError(f"latency.target_ms: objectives=mnas needs a latency target in ms > 0, e.g. "
                          f"latency.target_ms=20, got {target!r}")
    if isinstance(w, bool) or not isinstance(w, (int, float)):
        raise ConfigError(f"latency.w: must be a number (MnasNet uses -0.07), got {w!r}")
    return float(target), float(w)


def with_latency_estimate(problem: Problem, latency: Any, int8: Any = None) -> Problem:
    """The problem with latency_ms (and latency_int8_ms) among the costs known before training,
    when a constraint bounds them."""
    sources = {metric: source for metric, source in (("latency_ms", latency), ("latency_int8_ms", int8))
               if source is not None and metric in problem.constraints}
    if not sources:
        return problem
    base = problem.estimate

    def estimate(arch: Any) -> dict[str, float]:
        known = dict(base(arch)) if base is not None else {}
        for metric, source in sources.items():
            known[metric] = source(arch)
        return known

    return replace(problem, estimate=estimate)
