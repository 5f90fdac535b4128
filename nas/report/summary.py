"""What a run concludes, as plain data: the winner with mean ± std, the evaluator's noise, and how
the winner compares with each baseline. ``best.yaml``, the CLI summary and the report show it."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import pandas as pd

from nas.run.latencybound import LatencyBound
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
                baselines: Sequence[Baseline] = (), latency_bound: LatencyBound | None = None,
                refused: int = 0) -> dict[str, Any]:
    """The content of ``best.yaml``; ``refused``: proposals that broke a constraint before evaluation."""
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
    if latency_bound is not None:
        summary["latency_bound"] = {**latency_bound.to_config(), "refused": refused}
        summary["latency_bound"]["verdict"] = bound_verdict(summary)
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


def bound_verdict(summary: Mapping[str, Any]) -> str:
    """The question a run bounded by its baseline's latency answers, answered: is the winner better
    than that baseline at the baseline's speed, beyond the evaluator's noise?"""
    bound = summary["latency_bound"]
    name, lat = bound["baseline"], bound["metric"]
    metric, _, direction = summary["objectives"][0].partition(":")
    best = summary.get("best")
    if not best:
        return f"no candidate within the bound succeeded: nothing to compare with {name}"
    row = next((b for b in summary.get("baselines") or [] if b.get("arch") == bound["arch"]), None)
    if row is None or row.get("difference") is None:
        why = (row or {}).get("status") or "not evaluated"
        return f"{name} {why}: no comparison"
    difference, std = float(row["difference"]), row.get("difference_std")
    gain = difference if direction != "min" else -difference
    words = (("more accurate than", "less accurate than", "as accurate as") if metric.startswith("accuracy")
             else (f"better on {metric} than", f"worse on {metric} than", f"as good on {metric} as"))
    if std is not None:
        word = words[0] if gain > Z95 * std else words[1] if gain < -Z95 * std else words[2]
        shown = f"{metric} {difference:+.3g} ± {std:.2g}" + (", within noise" if word == words[2] else "")
    else:
        word = words[0] if gain > 0 else words[1] if gain < 0 else words[2]
        shown = f"{metric} {difference:+.3g}; no repeats, so the noise is unknown"
    speed = ""
    if isinstance(best.get(lat), (int, float)):
        theirs = row.get(lat, bound["ms"])
        speed = f" at {best[lat]:.3g} ms against its {theirs:.3g} ms"
    return f"the winner is {word} {name}{speed} ({shown})"


def describe_bound(summary: Mapping[str, Any]) -> list[str]:
    """The bound a run had and where it came from, then the verdict (none without a bound)."""
    bound = summary.get("latency_bound")
    if not isinstance(bound, Mapping) or "ms" not in bound:
        return []
    refused = int(bound.get("refused") or 0)
    text = str(bound.get("text") or f"latency bound {bound['ms']:.3g} ms")
    if refused:
        broke = "it or another constraint" if len(summary.get("constraints") or {}) > 1 else "it"
        text += f"; {refused} proposal{'s' * (refused != 1)} broke {broke} and were not evaluated"
    return [text, str(bound.get("verdict") or bound_verdict(summary))]
