"""Strategy overhead: milliseconds of ask + tell per trial, the evaluation itself excluded.

Each strategy proposes ``--trials`` architectures; a synthetic metric (a hash of the canonical
string, so no evaluator time is counted) is told back. Timings are per trial after the first
``--population`` trials (the steady state, once the population is full), and the target is
evolution at population 100 <= 2 ms per trial. The last column adds the run loop's own
bookkeeping (trials.csv append, state.json checkpoint, leaderboard append under its lock).

    python benchmarks/strategy_overhead.py [--trials 600] [--population 100]
"""
from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time

from nas.run.runner import Run
from nas.strategies import Objective, Problem, make_strategy
from search_spaces import load_space

TARGET_MS = 2.0


def metric(key: str) -> dict[str, float]:
    """Two independent pseudo-random metrics of an architecture (a Pareto front of ~sqrt(n))."""
    digest = hashlib.blake2b(key.encode(), digest_size=16).digest()
    a, b = int.from_bytes(digest[:8], "little") / 2**64, int.from_bytes(digest[8:], "little") / 2**64
    return {"accuracy": 100 * a, "latency_ms": 1 + 10 * b}


def ask_tell_ms(space, name: str, options: dict, problem: Problem, trials: int, warmup: int) -> list[float]:
    strategy = make_strategy(name, space, problem, 0, **options)
    times = []
    for i in range(trials):
        start = time.perf_counter()
        arch = strategy.ask(1)[0]
        key = space.key(arch)
        values = metric(key)
        strategy.tell(arch, {**values, "status": "ok"})
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1e3)
    return times


def run_loop_ms(space, options: dict, trials: int) -> float:
    """Per-trial wall time of the full run loop (checkpoints included) with an instant evaluator."""
    problem = Problem()
    strategy = make_strategy("evolution", space, problem, 0, **options)
    with tempfile.TemporaryDirectory() as out:
        run = Run(space, strategy, lambda arch: metric(space.key(arch)), problem,
                  run_dir=f"{out}/runs/bench", budget=trials)
        start = time.perf_counter()
        run.run()
        return (time.perf_counter() - start) * 1e3 / trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=600)
    parser.add_argument("--population", type=int, default=100)
    parser.add_argument("--spaces", nargs="*", default=["mbconv", "nasbench_macro"])
    args = parser.parse_args()
    pop = args.population
    single = Problem()
    pair = Problem(objectives=(Objective("accuracy", "max"), Objective("latency_ms", "min")))
    cases = [
        ("evolution", {"population": pop}, single, "1 objective"),
        ("evolution", {"population": pop}, pair, "2 objectives (NSGA-II ranks)"),
        ("random", {}, single, ""),
        ("optuna", {"sampler": "tpe"}, single, "in-memory study"),
    ]
    print(f"ask+tell per trial, ms (median / p95 over trials {pop}..{args.trials}); "
          f"target: evolution at population {pop} <= {TARGET_MS} ms")
    for space_name in args.spaces:
        space = load_space(space_name)
        for name, options, problem, note in cases:
            # Optuna's TPE refits its model on every ask: fewer trials keep the run short.
            trials = args.trials if name != "optuna" else min(args.trials, pop + 100)
            times = ask_tell_ms(space, name, options, problem, trials, warmup=pop)
            median = statistics.median(times)
            p95 = statistics.quantiles(times, n=20)[-1]
            verdict = ""
            if name == "evolution":
                verdict = f"  ratio to target {median / TARGET_MS:.2f} ({'meets' if median <= TARGET_MS else 'MISSES'})"
            print(f"{space_name:<15}{name:<10}{note:<30}{median:8.3f}{p95:9.3f}{verdict}")
        loop = run_loop_ms(space, {"population": pop}, min(args.trials, 300))
        print(f"{space_name:<15}{'run loop':<10}{'evolution + checkpoints':<30}{loop:8.3f}")


if __name__ == "__main__":
    main()
