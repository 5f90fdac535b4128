"""Search quality on NAS-Bench-Macro, clean and with its own training noise.

Clean: every strategy runs through the same ask/tell loop with the tabular evaluator (the mean of
the table's three training runs); identity-order twins count as one evaluation (they are one
network). Regret = 93.127 (the table's best mean accuracy) minus the best mean accuracy found so
far, after 25/50/100 evaluations, 30 seeds x 150 each. NNI's RegularizedEvolution and TPE
(strategy=nni.*, with NNI's default settings) run beside ours when NNI is installed.

Noisy (``--noisy-budget``, default 100 evaluations, repeats included): each evaluation returns ONE
stored training run's accuracy (``NasBenchMacro(noisy=True, seed=run seed)``: repeat r of a network
reads run (offset + r) mod 3), through the public API (``nas.search(..., out=None)``). It prints the
regret of the network the run REPORTS (``result.best``, judged by the table's mean) and of the best
network it EVALUATED, for each selection rule (``select=race``, the default; ``halving``; ``none``).

    python benchmarks/search_quality.py [--table PATH] [--seeds 30] [--budget 150] [--strategies ...]
        [--noisy-strategies random evolution optuna] [--selects race halving none] [--skip-clean]

A strategy may carry options: ``nni.RegularizedEvolution:population_size=32,sample_size=16``.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import yaml

import nas
from evaluators.tabular import NasBenchMacro
from nas.strategies import STRATEGIES, make_strategy, register
from search_spaces import load_space

CHECKPOINTS = (25, 50, 100)
NNI = ["nni.RegularizedEvolution", "nni.TPE"]  # NNI 3.0's, through nas/strategies/nni_bridge.py
DEFAULT_TABLE = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "nas-bench-macro_cifar10.json"


def one_run(args: tuple[str, dict, int, int, str]) -> tuple[list[float], bool, float]:
    name, options, seed, budget, table = args
    space = load_space("nasbench_macro")
    evaluator = NasBenchMacro(table)
    strategy = make_strategy(name, space, seed=seed, **options)
    best, curve = -1.0, []
    start = time.perf_counter()
    while len(curve) < budget:
        asked = strategy.ask(1)
        if not asked:
            break
        metrics = evaluator(asked[0])
        strategy.tell(asked[0], {**metrics, "status": "ok"})
        best = max(best, metrics["accuracy"])
        curve.append(best)
    strategy.close()  # NNI's strategies run their loop in a thread: end it
    top = max(row["mean_acc"] for row in json.loads(Path(table).read_text()).values())
    return [top - b for b in curve], curve[-1] >= top, time.perf_counter() - start


def one_noisy_run(args: tuple[str, dict, str, int, int, str]) -> tuple[float, float, int]:
    """(regret of the reported winner, regret of the best evaluated network, evaluations)."""
    logging.disable(logging.WARNING)
    name, options, select, seed, budget, table = args
    evaluator = NasBenchMacro(table, noisy=True, seed=seed)
    result = nas.search(load_space("nasbench_macro"), strategy=name, evaluator=evaluator, budget=budget,
                        seed=seed, out=None, progress=False, select=select, baselines="none", **options)
    means = {key: row["mean_acc"] for key, row in evaluator.table.items()}
    top = max(means.values())
    reported = top - means[evaluator.key(result.best["arch"])]
    evaluated = top - max(means[evaluator.key(a)] for a in result.trials["arch"].unique())
    return reported, evaluated, len(result.trials)


def noisy_table(pool: ProcessPoolExecutor, args: argparse.Namespace) -> None:
    print(f"\nNAS-Bench-Macro with its training noise, {args.seeds} seeds x {args.noisy_budget} "
          "evaluations (repeats included); regret judged by the table's mean")
    print(f"{'strategy':<18}{'select':<9}{'reported median':>17}{'mean':>8}{'evaluated median':>18}"
          f"{'mean':>8}{'reported <= 0.02':>18}{'s/run':>7}")
    for spec in args.noisy_strategies:
        name, options = parse_spec(spec)
        for select in args.selects:
            start = time.perf_counter()
            jobs = [(name, options, select, seed, args.noisy_budget, args.table) for seed in range(args.seeds)]
            results = list(pool.map(one_noisy_run, jobs))
            reported = [r for r, _, _ in results]
            evaluated = [e for _, e, _ in results]
            within = sum(r <= 0.02 + 1e-9 for r in reported) / len(reported)
            secs = (time.perf_counter() - start) * args.workers / len(results)
            print(f"{spec:<18}{select:<9}{statistics.median(reported):>17.3f}{statistics.mean(reported):>8.3f}"
                  f"{statistics.median(evaluated):>18.3f}{statistics.mean(evaluated):>8.3f}"
                  f"{within:>18.0%}{secs:>7.1f}")


def register_draw_tellers(names: list[str]) -> list[str]:
    """``NAME:draws`` variants whose strategy keeps the first draw of a repeated network (retell
    ignored), to measure what telling the running mean is worth."""
    added = []
    for name in names:
        base = STRATEGIES[name]
        variant = type(f"{base.__name__}Draws", (base,), {"name": f"{name}:draws",
                                                          "retell": lambda self, arch, metrics: None})
        register(variant, ask_tell=False)
        added.append(variant.name)
    return added


def parse_spec(spec: str) -> tuple[str, dict]:
    """``name`` or ``name:key=value,key=value`` (values parsed as YAML scalars)."""
    name, _, rest = spec.partition(":")
    if rest == "draws":
        return spec, {}
    options = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        options[key] = yaml.safe_load(value)
    return name, options


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default=os.environ.get("NAS_BENCH_MACRO", str(DEFAULT_TABLE)))
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--budget", type=int, default=150)
    parser.add_argument("--strategies", nargs="*", default=["random", "evolution", "optuna", *NNI])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--noisy-budget", type=int, default=100)
    parser.add_argument("--noisy-strategies", nargs="*", default=["random", "evolution", "optuna"])
    parser.add_argument("--selects", nargs="*", default=["race", "halving", "none"])
    parser.add_argument("--skip-clean", action="store_true")
    parser.add_argument("--tell-draws", action="store_true",
                        help="also run evolution and optuna told each network's first draw only")
    args = parser.parse_args()
    if args.tell_draws:
        args.noisy_strategies += register_draw_tellers(["evolution", "optuna"])
    if args.skip_clean:
        with ProcessPoolExecutor(args.workers) as pool:
            noisy_table(pool, args)
        return
    print(f"NAS-Bench-Macro, {args.seeds} seeds x {args.budget} unique evaluations")
    print(f"{'strategy':<26}" + "".join(f"{'regret@' + str(c):>12}" for c in CHECKPOINTS)
          + f"{'top-1 found':>13}{'s/run':>8}")
    with ProcessPoolExecutor(args.workers) as pool:
        for spec in args.strategies:
            name, options = parse_spec(spec)
            if name.startswith("nni.") and importlib.util.find_spec("nni") is None:
                print(f"{spec:<26}  skipped: NNI is not installed (pip install 'nas[nni]')")
                continue
            jobs = [(name, options, seed, args.budget, args.table) for seed in range(args.seeds)]
            results = list(pool.map(one_run, jobs))
            cells = []
            for c in CHECKPOINTS:
                regrets = [r[min(c, len(r)) - 1] for r, _, _ in results]
                cells.append(f"{statistics.median(regrets):>12.3f}")
            found = sum(f for _, f, _ in results) / len(results)
            secs = statistics.mean(t for _, _, t in results)
            print(f"{spec:<26}{''.join(cells)}{found:>12.0%}{secs:>8.1f}")
        if args.noisy_strategies:
            noisy_table(pool, args)


if __name__ == "__main__":
    main()
