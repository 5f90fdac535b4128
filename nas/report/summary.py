"""What a run concludes, as plain data: the winner with mean ± std, the evaluator's noise, and how
the winner compares with each baseline. ``best.yaml``, the CLI summary and the report show it."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import pandas as pd

from nas.run.problem import arch_summary, best_row, noise_std, pareto_rows, plain_rows
from nas.run.trial import Baseline, RunInfo
from nas.select.selection import Selection
from nas.strategies.base import Problem

Z95 = 1.96  # two-sided 95 % normal quantile


def noise_entry(trials: pd.DataFrame, metric: str, n: int) -> dict[str, Any] | None:
    """The pooled seed-to-seed std of ``metric`` and the difference between two means of ``n``
    evaluations each that it would explain 95 % of the time."""
    pooled = noise_std(trials, metric)
    if pooled is None:
        return None
    std, dof = pooled
    return {"metric": metric, "std": std, "dof": dof, "n": n, "within": Z95 * std * math.sqrt(2 / max(n, 1))}


def compare(winner: Mapping[str, Any], baseline: Mapping[str, Any], metric: str,
            noise: Mapping[str, Any] | None) -> tuple[float, float | None]:
    """(winner - baseline on ``metric``, the standard error of that difference)."""
    difference = float(winner[metric]) - float(baseline[metric])
    if noise is None:
        return difference, None
    std = float(noise["std"])
    return difference, std * math.sqrt(1 / max(int(winner.get("n", 1)), 1) + 1 / max(int(baseline.get("n", 1)), 1))


def run_summary(trials: pd.DataFrame, problem: Problem, selection: Selection, info: RunInfo,
                baselines: Sequence[Baseline] = ()) -> dict[str, Any]:
    """The content of ``best.yaml``."""
    metric = problem.objectives[0].metric
    best = best_row(trials, problem, selection.winner_repeats)
    noise = noise_entry(trials, metric, int(best["n"]) if best else 1)
    summary: dict[str, Any] = {
        "run_id": info.run_id,
        "space": info.space,
        "strategy": info.strategy,
        "evaluator": info.evaluator,
        "seed": info.seed,
        "evaluations": len(trials),
        "objectives": [f"{o.metric}:{o.direction}" for o in problem.objectives],
        "constraints": dict(problem.constraints),
        "selection": _selection(selection),
        "best": best,
        "noise": noise,
    }
    if baselines:
        summary["baselines"] = _baselines(trials, problem, baselines, best, noise, metric)
    if len(problem.objectives) > 1:
        summary["pareto"] = plain_rows(pareto_rows(trials, problem))
    return summary


def _selection(selection: Selection) -> dict[str, Any]:
    fields = asdict(selection)
    keep = {"race": ("method", "top", "repeats"), "halving": ("method", "k", "eta", "repeats")}
    return {k: v for k, v in fields.items() if k in keep.get(selection.method, ("method",))}


def _baselines(trials: pd.DataFrame, problem: Problem, baselines: Sequence[Baseline],
               best: Mapping[str, Any] | None, noise: Mapping[str, Any] | None, metric: str) -> list[dict]:
    archs = arch_summary(trials, problem)
    rows = {row["arch"]: row for row in plain_rows(archs)} if len(archs) else {}
    out = []
    for baseline in baselines:
        row = rows.get(baseline.key)
        entry: dict[str, Any] = {"name": baseline.name, "arch": baseline.key}
        if row is None:
            entry["status"] = f"not evaluated: {baseline.refused}" if baseline.refused else "failed"
            out.append(entry)
            continue
        entry.update({k: v for k, v in row.items() if k not in ("arch", "trial", "baseline", "searched")})
        if best is not None and metric in row and metric in best:
            difference, std = compare(best, row, metric, noise)
            entry["difference"] = difference
            if std is not None:
                entry["difference_std"] = std
        out.append(entry)
    return out


def describe_best(summary: Mapping[str, Any]) -> str:
    """One line: ``accuracy 91.3 ± 0.9 (n=3); differences under ~1.4 points are within noise``."""
    best, noise = summary.get("best"), summary.get("noise")
    if not best:
        return "no successful evaluation"
    metric = summary["objectives"][0].partition(":")[0]
    text = f"{metric} {best[metric]:.4g}"
    std = best.get(f"{metric}_std")
    if std is not None:
        text += f" ± {std:.2g}"
    text += f" (n={best.get('n', 1)})"
    if noise:
        text += (f"; differences under ~{noise['within']:.2g} are within noise (seed-to-seed std "
                 f"{noise['std']:.2g} from {noise['dof']} repeat degrees of freedom)")
    return text
