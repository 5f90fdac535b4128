"""Objectives and constraints from what a user types, and the best / Pareto trials of a table."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from nas.strategies.base import Objective, Problem
from nas.strategies.pareto import pareto_mask
from search_spaces.errors import ConfigError

# Metrics where smaller is better unless the user says ``metric:max``; anything else is maximised.
MINIMISED = frozenset(
    {"latency_ms", "latency_int8_ms", "params", "macs", "flops", "energy", "memory", "loss", "loss_int8",
     "error_rate", "wall_s"}
)
# Shortcut constraint keys: ``max_params=5e6`` is ``constraints.params=5e6``.
CONSTRAINT_SHORTCUTS = {"max_params": "params", "max_macs": "macs", "max_latency_ms": "latency_ms"}
# Costs every network has more than zero of: a bound of zero or less on them cannot hold.
POSITIVE_COSTS = frozenset({"params", "macs", "latency_ms", "latency_int8_ms"})


def default_direction(metric: str) -> str:
    return "min" if metric in MINIMISED else "max"


def parse_objective(spec: str | Objective | Mapping[str, Any]) -> Objective:
    """``"accuracy"``, ``"latency_ms:min"``, an Objective, or ``{"metric": ..., "direction": ...}``."""
    if isinstance(spec, Objective):
        return spec
    if isinstance(spec, Mapping):
        metric, direction = str(spec.get("metric", "")), spec.get("direction")
    else:
        metric, _, direction = str(spec).partition(":")
    metric = metric.strip()
    direction = str(direction or default_direction(metric)).strip().lower()  # a mapping's may be anything
    if not metric:
        raise ConfigError(f"objective {spec!r}: needs a metric name, e.g. accuracy or latency_ms:min")
    if direction not in ("max", "min"):
        raise ConfigError(f"objective {spec!r}: direction must be max or min, got {direction!r}")
    return Objective(metric, direction)


def parse_objectives(specs: Any) -> tuple[Objective, ...]:
    """One objective or a list of them; the first one is what 'best' means."""
    if specs is None:
        return (Objective("accuracy", "max"),)
    if isinstance(specs, (str, Objective, Mapping)):
        specs = [specs]
    if not isinstance(specs, (list, tuple)):
        raise ConfigError("objectives: expected a metric or a list of them, e.g. "
                          f"objectives=[accuracy,latency_ms:min], got {specs!r}")
    objectives = tuple(parse_objective(s) for s in specs)
    if not objectives:
        raise ConfigError("objectives: give at least one, e.g. objectives=[accuracy,latency_ms:min]")
    names = [o.metric for o in objectives]
    if len(set(names)) != len(names):
        raise ConfigError(f"objectives: a metric appears twice in {names}")
    return objectives


def latency_metric(int8: bool) -> str:
    """What ``max_latency_ms`` bounds: the int8 latency when the run quantizes, what a quantized
    deployment runs at."""
    return "latency_int8_ms" if int8 else "latency_ms"


def parse_constraints(constraints: Mapping[str, Any] | None, int8: bool = False, **shortcuts: Any) -> dict[str, float]:
    """``{"params": 5e6}`` plus ``max_params=...`` style shortcuts, as metric -> float maximum
    (``int8``: ``max_latency_ms`` bounds the int8 latency)."""
    merged: dict[str, Any] = dict(constraints or {})
    labels = {str(metric): f"constraints.{metric}" for metric in merged}  # what the user typed
    for key, value in shortcuts.items():
        if value is not None:
            metric = CONSTRAINT_SHORTCUTS[key]
            metric = latency_metric(int8) if metric == "latency_ms" else metric
            merged[metric] = value
            labels[metric] = key
    out: dict[str, float] = {}
    for metric, bound in merged.items():
        if bound is None:
            continue
        try:
            number = float(bound)
        except (TypeError, ValueError):
            raise ConfigError(f"constraint {metric}: expected a number, got {bound!r}") from None
        if math.isnan(number):
            raise ConfigError(f"constraint {metric}: expected a number, got {bound!r}")
        if metric in POSITIVE_COSTS and number <= 0:
            # No network has zero parameters, MACs or latency: such a run could only refuse every proposal.
            raise ConfigError(f"{labels[str(metric)]}: must be > 0, got {number:g}; no network could meet it")
        out[str(metric)] = number
    return out


# -- one row per architecture ----------------------------------------------------------------------
# Columns of a trials table that are not metrics (never averaged).
BOOKKEEPING = ("trial", "repeat", "wall_s", "seed")


def arch_summary(trials: pd.DataFrame, problem: Problem) -> pd.DataFrame:
    """One row per architecture, in order of first evaluation: the mean of every numeric metric over
    its ok evaluations, ``<objective>_std`` (sample std; NaN with one evaluation), ``n`` (its ok
    evaluations), ``trial`` (its first row), ``baseline`` (evaluated as a hand-designed reference)
    and ``searched`` (proposed by the search)."""
    if trials.empty or "arch" not in trials or "status" not in trials:
        return pd.DataFrame(columns=["arch", "n", "baseline", "searched"])
    stage = trials["stage"] if "stage" in trials else pd.Series("search", index=trials.index)
    roles = pd.DataFrame({"arch": trials["arch"], "baseline": stage.eq("baseline"),
                          "searched": ~stage.eq("baseline")}).groupby("arch", sort=False).any()
    ok = trials[trials["status"] == "ok"]
    if ok.empty:
        return pd.DataFrame(columns=["arch", "n", "baseline", "searched"])
    groups = ok.groupby("arch", sort=False)
    skip = set(BOOKKEEPING) | {"arch", "stage", "status"}
    numeric = [c for c in ok.columns if c not in skip and ok[c].dtype.kind in "biuf"]
    text = [c for c in ok.columns if c not in skip and c not in numeric and c not in ("timestamp", "error")]
    frame = groups[numeric].mean() if numeric else pd.DataFrame(index=groups.size().index)
    for objective in problem.objectives:
        if objective.metric in numeric:
            frame[f"{objective.metric}_std"] = groups[objective.metric].std(ddof=1)
    for column in text:
        frame[column] = groups[column].first()
    frame["n"] = groups.size()
    frame["trial"] = groups["trial"].min() if "trial" in ok else range(len(frame))
    frame = frame.join(roles)
    frame = frame.reset_index()
    first = ["arch", "trial", "n", *[c for o in problem.objectives for c in (o.metric, f"{o.metric}_std")]]
    ordered = [c for c in first if c in frame] + [c for c in frame.columns if c not in first]
    return frame[ordered]


def mean_metrics(told: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """The mean of every numeric metric over evaluations (for constraint checks)."""
    sums: dict[str, list[float]] = {}
    for t in told:
        for key, value in t.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                sums.setdefault(key, []).append(float(value))
    return {k: sum(v) / len(v) for k, v in sums.items()}


def noise_std(trials: pd.DataFrame, metric: str) -> tuple[float, int] | None:
    """The evaluator's seed-to-seed std of ``metric``, pooled over architectures evaluated more than
    once, and its degrees of freedom; None without repeats."""
    if trials.empty or metric not in trials or "status" not in trials:
        return None
    ok = trials[trials["status"] == "ok"]
    values = pd.to_numeric(ok[metric], errors="coerce")
    groups = values.groupby(ok["arch"])
    counts, variances = groups.count(), groups.var(ddof=1)
    repeated = counts > 1
    dof = int((counts[repeated] - 1).sum())
    if dof == 0:
        return None
    pooled = float(((counts[repeated] - 1) * variances[repeated]).sum() / dof)
    return math.sqrt(pooled), dof


# -- ranking trials ---------------------------------------------------------------------------------
def winner(n: Sequence[float], means: Sequence[float], violations: Sequence[float], min_repeats: int = 1,
           least_infeasible: bool = False) -> int | None:
    """The winner rule, the one implementation: the position of the winner among architectures
    given in order of first evaluation, each by its evaluations counted (``n``), its mean on the
    first objective signed so that larger is better, and its means' constraint violation.

    Among the feasible ones (violation 0), those with the most evaluations up to ``min_repeats``
    compete, and the best mean wins; the earliest wins ties. With none feasible: None, or with
    ``least_infeasible`` the least infeasible ones compete (the best there is)."""
    n, means, violations = (np.asarray(v, dtype=float) for v in (n, means, violations))
    scored = n > 0
    pool = scored & (violations <= 0)
    if not pool.any():
        if not (least_infeasible and scored.any()):
            return None
        pool = scored & (violations == violations[scored].min())
    pool &= n >= min(min_repeats, n[pool].max())
    return int(np.where(pool, means, -np.inf).argmax())  # argmax: the first of equal means


def _scored(trials: pd.DataFrame, problem: Problem) -> tuple[pd.DataFrame, np.ndarray]:
    """The ok rows with every objective known, and each one's constraint violation."""
    if trials.empty or "status" not in trials:
        return trials.iloc[0:0], np.zeros(0)
    ok = trials[trials["status"] == "ok"]
    metrics = [o.metric for o in problem.objectives]
    if any(m not in ok for m in metrics):
        return ok.iloc[0:0], np.zeros(0)
    ok = ok.dropna(subset=metrics)
    if not problem.constraints or ok.empty:
        return ok, np.zeros(len(ok))
    return ok, np.array([problem.violation(row) for row in ok.to_dict(orient="records")], dtype=float)


def _searched(trials: pd.DataFrame, problem: Problem) -> pd.DataFrame:
    """Per-architecture means of the searched candidates (baseline-only architectures left out)."""
    summary = arch_summary(trials, problem)
    if summary.empty:
        return summary
    summary = summary[summary["searched"]]
    return summary.assign(status="ok")


def best_row(trials: pd.DataFrame, problem: Problem, min_repeats: int = 1) -> dict[str, Any] | None:
    """The winner (`winner`, the least infeasible when none is feasible) among the searched
    architectures. Metrics are means over its evaluations; ``n`` counts them, ``<objective>_std``
    is their spread."""
    ok, violations = _scored(_searched(trials, problem), problem)
    if ok.empty:
        return None
    first = problem.objectives[0]
    i = winner(ok["n"], ok[first.metric].astype(float) * first.sign(), violations, min_repeats,
               least_infeasible=True)
    return None if i is None else _plain(ok.iloc[i].drop(labels=["status", "searched"]).to_dict())


def pareto_rows(trials: pd.DataFrame, problem: Problem) -> pd.DataFrame:
    """Searched architectures (their means) no other one dominates on all objectives, among the
    feasible ones (the least infeasible ones when none is feasible; all of them when one objective
    is tied at the best value)."""
    ok, violations = _scored(_searched(trials, problem), problem)
    if ok.empty:
        return ok
    feasible = violations <= 0
    ok = ok[feasible if feasible.any() else violations == violations.min()]
    values = np.column_stack(
        [ok[o.metric].astype(float).to_numpy() * o.sign() for o in problem.objectives]
    )
    return ok[pareto_mask(values)]


def _plain(row: Mapping[str, Any]) -> dict[str, Any]:
    """Python scalars only, NaN cells dropped (for YAML and for users)."""
    out = {}
    for key, value in row.items():
        if hasattr(value, "item"):
            value = value.item()
        if isinstance(value, float) and math.isnan(value):
            continue
        out[str(key)] = value
    return out


def plain_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [_plain(r) for r in frame.to_dict(orient="records")]
