"""A small run with repeats and baselines, as tables and as a run folder, built without searching."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import yaml

from nas.report.plots import progress_plot, tradeoff_plot
from nas.run.files import atomic_write_text
from nas.run.folder import RunDir
from nas.run.problem import arch_summary, best_row, noise_std
from nas.strategies.base import Objective, Problem
from search_spaces import zoo

# Searched architectures: a real network string for the winner (so the report can draw it), short
# keys for the rest.
WINNER = str(zoo.reference("mobilenet_v2"))
B0, R18 = str(zoo.reference("efficientnet_b0")), str(zoo.reference("resnet18"))
BASELINES = {B0: "efficientnet_b0", R18: "resnet18"}
ACCURACY = Problem(objectives=(Objective("accuracy", "max"),))
PARETO = Problem(objectives=(Objective("accuracy", "max"), Objective("latency_ms", "min")))
MIN_REPEATS = 3

# (arch, stage, accuracy, latency_ms, params); in the order of evaluation. "lucky" has the best
# single draw (85) but a worse mean than the winner once repeated; "fails" never succeeds.
_ROWS = [
    (B0, "baseline", 70.0, 5.0, 5.3e6), (B0, "baseline", 71.0, 5.2, 5.3e6),
    (B0, "baseline", 72.0, 4.8, 5.3e6),
    (R18, "baseline", 65.0, 12.0, 11.7e6), (R18, "baseline", 66.0, 12.5, 11.7e6),
    (R18, "baseline", 67.0, 11.5, 11.7e6),
    (WINNER, "search", 80.0, 10.0, 3.5e6), ("fast", "search", 75.0, 2.0, 1.0e6),
    ("lucky", "search", 85.0, 30.0, 9.0e6), ("tiny", "search", 60.0, 1.0, 0.3e6),
    ("slow", "search", 78.0, 40.0, 20e6), ("fails", "search", math.nan, math.nan, math.nan),
    ("lucky", "select", 70.0, 30.0, 9.0e6), (WINNER, "select", 82.0, 10.0, 3.5e6),
    ("lucky", "select", 72.0, 30.0, 9.0e6), (WINNER, "select", 81.0, 10.0, 3.5e6),
    ("fast", "select", 74.0, 2.0, 1.0e6),
]
FRONT = ("tiny", "fast", WINNER)  # best accuracy mean for its latency


def trials() -> pd.DataFrame:
    """One row per evaluation, the columns a run writes."""
    rows, seen = [], {}
    for trial, (arch, stage, accuracy, latency, params) in enumerate(_ROWS):
        failed = math.isnan(accuracy)
        rows.append({"trial": trial, "arch": arch, "repeat": seen.get(arch, 0), "stage": stage,
                     "status": "failed" if failed else "ok", "accuracy": accuracy,
                     "latency_ms": latency, "params": params, "macs": params * 60, "wall_s": 1.0,
                     "timestamp": "2026-01-01T00:00:00",
                     "error": "RuntimeError: out of memory" if failed else ""})
        seen[arch] = seen.get(arch, 0) + 1
    return pd.DataFrame(rows)


def best_yaml(table: pd.DataFrame) -> dict:
    """best.yaml as the runner writes it: winner, noise, selection and baselines."""
    best = best_row(table, ACCURACY, MIN_REPEATS)
    std, dof = noise_std(table, "accuracy")
    summary = arch_summary(table, ACCURACY).set_index("arch")
    baselines = []
    for key, name in BASELINES.items():
        ref = summary.loc[key]
        spread = math.sqrt(best["accuracy_std"] ** 2 / best["n"] + ref["accuracy_std"] ** 2 / ref["n"])
        baselines.append({"name": name, "arch": key, "n": int(ref["n"]), "accuracy": float(ref["accuracy"]),
                          "accuracy_std": float(ref["accuracy_std"]), "latency_ms": float(ref["latency_ms"]),
                          "params": float(ref["params"]), "macs": float(ref["macs"]),
                          "difference": best["accuracy"] - float(ref["accuracy"]), "difference_std": spread})
    return {"best": best, "noise": {"metric": "accuracy", "std": std, "dof": dof, "within": 2 * std},
            "selection": {"method": "race", "top": 3, "repeats": MIN_REPEATS}, "baselines": baselines}


def write_run(root: Path, run_id: str = "rep", best: bool = True) -> RunDir:
    """A run folder with config.yaml, trials.csv, best.yaml (unless ``best`` is false) and plots."""

    rdir = RunDir(Path(root) / "runs" / run_id)
    rdir.path.mkdir(parents=True)
    config = {"space": "mbconv", "strategy": {"name": "evolution"}, "evaluator": {"name": "proxy"},
              "budget": 11, "objectives": ["accuracy:max"], "constraints": {},
              "select": {"name": "race", "top": 3, "repeats": MIN_REPEATS}, "baselines": "auto"}
    atomic_write_text(rdir.config, yaml.safe_dump(config, sort_keys=False))
    table = trials()
    atomic_write_text(rdir.trials, table.to_csv(index=False))
    if best:
        atomic_write_text(rdir.best, yaml.safe_dump(best_yaml(table), sort_keys=False))
    progress_plot(table, ACCURACY, rdir.path / "progress.png", baselines=BASELINES, min_repeats=MIN_REPEATS)
    tradeoff_plot(table, ACCURACY, rdir.path / "tradeoff.png", baselines=BASELINES, winner=WINNER)
    return rdir
