"""Search quality on NAS-Bench-Macro: regret after 25/50/100 evaluations, 30 seeds x 150 each.

Every strategy runs through the same ask/tell loop with the tabular evaluator; identity-order twins
count as one evaluation (they are one network). Regret = 93.127 (the table's best mean accuracy)
minus the best mean accuracy found so far. NNI's RegularizedEvolution and TPE (strategy=nni.*, with
NNI's default settings) run beside ours when NNI is installed (``pip install 'nas[nni]'``).

    python benchmarks/search_quality.py [--table PATH] [--seeds 30] [--budget 150] [--strategies ...]

A strategy may carry options: ``nni.RegularizedEvolution:population_size=32,sample_size=16``.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from evaluators.tabular import NasBenchMacro
from nas.strategies import make_strategy
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
    if hasattr(strategy, "close"):
        strategy.close()  # NNI's strategies run their loop in a thread: end it
    top = max(row["mean_acc"] for row in json.loads(Path(table).read_text()).values())
    return [top - b for b in curve], curve[-1] >= top, time.perf_counter() - start


def parse_spec(spec: str) -> tuple[str, dict]:
    """``name`` or ``name:key=value,key=value`` (values parsed as YAML scalars)."""
    import yaml

    name, _, rest = spec.partition(":")
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
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
