"""Do the search defaults hold beyond NAS-Bench-Macro? Regret of each setting on several landscapes.

Every setting runs ``nas.search`` in memory with a callable evaluator on each landscape, one run per
seed (the seed drives both the search and which stored training seed each evaluation reads):
NAS-Bench-Macro (nearly additive over layers), a synthetic NK-style landscape (6 x 5 choices,
dominated by neighbour interactions, with narrow peaks; ``benchmarks/landscapes.py``), every
member of a small MBConv space trained on digits with two seeds
(``benchmarks/make_digits_landscape.py``), and the Fashion-MNIST ground truth's members with their
two seeds (``benchmarks/ground_truth.py``; one choice among a few dozen networks, run once it is
complete). Clean landscapes return a member's mean accuracy (never repeated); noisy ones return one
stored seed per evaluation, so the selection stage matters.

Regret = the landscape's best mean accuracy minus the mean accuracy of the network the run reports
(``result.best``), and of the best network it evaluated at all (what a perfect selection would
have reported). ``<=0.02``: share of seeds within 0.02 points of the best.

    python benchmarks/defaults_check.py [--seeds 30] [--budget 100] [--digits-budget 40] [--fashion-budget 12]
        [--landscapes synthetic synthetic_noisy nasbench_macro nasbench_macro_noisy digits digits_noisy fashion
                      fashion_noisy]
        [--nasbench PATH] [--digits PATH] [--workers 1] [--csv PATH]

``--csv`` also writes one row per run (landscape, setting, seed, regrets), for paired comparisons.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

import nas
from evaluators.tabular import NasBenchMacro

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # landscapes.py beside this file, also in pool workers

import landscapes
from landscapes import Landscape, additive_r2, seed_std

DEFAULT_NASBENCH = HERE.parents[1] / "shared" / "benchmarks" / "nas-bench-macro_cifar10.json"
DEFAULT_DIGITS = HERE / "data" / "digits_landscape.json"
LANDSCAPES = ("synthetic", "synthetic_noisy", "nasbench_macro", "nasbench_macro_noisy", "digits",
              "digits_noisy", "fashion", "fashion_noisy")
RACE = {"name": "race", "top": 3, "repeats": 3}
HALVING = {"name": "halving", "k": 8, "eta": 2, "repeats": 3}
NONE = {"name": "none"}
# (label, strategy, options); on noisy landscapes every selection below is tried where it applies.
STRATEGIES = (
    ("random", "random", {}),
    ("evolution", "evolution", {}),
    ("optuna pw=0.25", "optuna", {"prior_weight": 0.25}),
    ("optuna pw=1.0", "optuna", {"prior_weight": 1.0}),
)
SELECTIONS = (("race", RACE), ("none", NONE), ("halving", HALVING))
NEAR = 0.02  # points of accuracy that count as having found the best


def settings(noisy: bool) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(label, strategy, options, select) to run; the selection only matters when noisy."""
    out = []
    for label, strategy, options in STRATEGIES:
        selections = SELECTIONS if noisy and strategy != "random" else SELECTIONS[:1]
        for name, select in selections:
            out.append((f"{label} [{name}]" if noisy else label, strategy, options, select))
    return out


@cache
def landscape(name: str, nasbench: str, digits: str) -> Landscape:
    """The landscape behind ``name`` (its ``_noisy`` twin shares it), built once per process."""
    base = name.removesuffix("_noisy")
    if base == "synthetic":
        return landscapes.synthetic()
    if base == "nasbench_macro":
        return landscapes.nasbench_macro(nasbench)
    if base == "fashion":
        return landscapes.fashion()
    return landscapes.digits(digits)


def evaluator(name: str, land: Landscape, seed: int, nasbench: str) -> Any:
    """NAS-Bench-Macro through the package's own evaluator; the others through the landscape."""
    noisy = name.endswith("_noisy")
    if land.name == "nasbench_macro":
        return NasBenchMacro(nasbench, noisy=noisy, seed=seed)
    return land.evaluator(noisy, seed)


def one_run(job: tuple[str, str, dict[str, Any], dict[str, Any], int, int, str, str]) -> dict[str, float]:
    """Regrets of one seeded search: of the reported winner and of the best evaluated network."""
    name, strategy, options, select, seed, budget, nasbench, digits = job
    land = landscape(name, nasbench, digits)
    start = time.perf_counter()
    result = nas.search(land.space, strategy=strategy, evaluator=evaluator(name, land, seed, nasbench),
                        budget=budget, seed=seed, out=None, progress=False, select=select,
                        baselines="none", latency="none", **options)
    wall = time.perf_counter() - start
    archs = result.archs
    searched = archs[archs["searched"].astype(bool)] if len(archs) else archs
    evaluated = max((land.mean_acc(a) for a in searched["arch"]), default=math.nan)
    reported = land.mean_acc(result.best["arch"]) if result.best else math.nan
    return {"reported": land.best - reported, "evaluated": land.best - evaluated,
            "archs": float(len(searched)), "evals": float(len(result.trials)), "wall": wall}


def digits_job_running(path: Path) -> bool:
    """Whether make_digits_landscape.py is still writing ``path`` (incomplete, written lately)."""
    if not path.is_file():
        return False
    meta = json.loads(path.read_text(encoding="utf-8")).get("_meta", {})
    return not meta.get("complete", False) and time.time() - path.stat().st_mtime < 600


def digits_ready(path: Path) -> bool:
    """Whether the digits landscape holds every member."""
    if not path.is_file():
        return False
    return bool(json.loads(path.read_text(encoding="utf-8")).get("_meta", {}).get("complete"))


def fashion_ready() -> bool:
    """Whether every member of the ground truth has every seed."""
    try:
        return bool(landscapes.fashion().meta["complete"])
    except landscapes.TableError:
        return False


def row(label: str, results: list[dict[str, float]]) -> str:
    """One table line: median, mean and share near the best of both regrets; archs; s/run."""
    cells = []
    for which in ("reported", "evaluated"):
        regrets = [r[which] for r in results]
        near = sum(r <= NEAR for r in regrets) / len(regrets)
        cells.append(f"{statistics.median(regrets):>8.3f}{statistics.fmean(regrets):>8.3f}{near:>8.0%}")
    archs = statistics.fmean(r["archs"] for r in results)
    wall = statistics.fmean(r["wall"] for r in results)
    return f"{label:<28}{cells[0]}   {cells[1]}{archs:>8.1f}{wall:>7.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--digits-budget", type=int, default=40, help="budget on the small digits space")
    parser.add_argument("--fashion-budget", type=int, default=12,
                        help="budget on the ground truth's members (a few dozen networks)")
    parser.add_argument("--landscapes", nargs="*", default=list(LANDSCAPES), choices=LANDSCAPES)
    parser.add_argument("--nasbench", default=os.environ.get("NAS_BENCH_MACRO", str(DEFAULT_NASBENCH)))
    parser.add_argument("--digits", default=str(DEFAULT_DIGITS))
    parser.add_argument("--workers", type=int, default=1, choices=(1, 2))
    parser.add_argument("--csv", help="write one row per run to this file")
    args = parser.parse_args()
    workers = args.workers
    if workers > 1 and digits_job_running(Path(args.digits)):
        print("make_digits_landscape.py is still running: 1 worker")
        workers = 1
    pool = ProcessPoolExecutor(workers) if workers > 1 else None
    runs: list[dict[str, Any]] = []
    try:
        for name in args.landscapes:
            if name.startswith("digits") and not digits_ready(Path(args.digits)):
                print(f"\n{name}: skipped, {args.digits} is missing or incomplete")
                continue
            if name.startswith("fashion") and not fashion_ready():
                print(f"\n{name}: skipped, the ground truth is not complete (python benchmarks/ground_truth.py report)")
                continue
            runs += run_landscape(name, args, pool)
    finally:
        if pool is not None:
            pool.shutdown()
    if args.csv:
        with open(args.csv, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(runs[0]) if runs else ["landscape"])
            writer.writeheader()
            writer.writerows(runs)


def run_landscape(name: str, args: argparse.Namespace,
                  pool: ProcessPoolExecutor | None) -> list[dict[str, Any]]:
    """Print the table of one landscape; its runs, one row per (setting, seed)."""
    land = landscape(name, args.nasbench, args.digits)
    noisy = name.endswith("_noisy")
    budget = {"digits": args.digits_budget, "fashion": args.fashion_budget}.get(land.name, args.budget)
    print(f"\n{name}: {len(land.table)} members, best mean {land.best:.3f}, additive R2 "
          f"{additive_r2(land):.2f}, seed std {seed_std(land):.2f}; {args.seeds} seeds x budget {budget}")
    print(f"{'':<28}{'-- reported winner regret --':>24}   {'-- best evaluated regret --':>24}")
    columns = f"{'median':>8}{'mean':>8}{'<=' + str(NEAR):>8}"
    print(f"{'setting':<28}{columns}   {columns}{'archs':>8}{'s/run':>7}")
    started, runs = time.perf_counter(), []
    for label, strategy, options, select in settings(noisy):
        jobs = [(name, strategy, options, select, seed, budget, args.nasbench, args.digits)
                for seed in range(args.seeds)]
        results = list(pool.map(one_run, jobs) if pool is not None else map(one_run, jobs))
        print(row(label, results), flush=True)
        runs += [{"landscape": name, "setting": label, "seed": seed, **r} for seed, r in enumerate(results)]
    print(f"({time.perf_counter() - started:.0f} s)")
    return runs


if __name__ == "__main__":
    main()
