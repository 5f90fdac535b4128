"""backend=ray throughput: evaluations per hour with 2 workers vs 1, one thread each.

One local Ray cluster (2 CPUs) serves every run. Each run is `nas.search` with the random strategy
(its proposals do not depend on results, so every run evaluates the same architectures), the proxy
evaluator on digits and `ray.cpus_per_trial=1` (one torch thread per trial). Runs alternate
(1 worker, 2 workers, 2 workers, 1 worker, ...) so machine noise hits both alike; a run's rate is
its evaluations over its wall time, cluster start excluded. Printed: both rates and their ratio
(target >= 1.8 on a 2-core machine), and how busy the workers were: short runs are dominated by
the workers' start and the last evaluation running alone (12 evaluations per run gave 1.65).

    python benchmarks/ray_scaling.py [--budget 30] [--rounds 1] [--epochs 3] [--space mbconv]
"""
from __future__ import annotations

import argparse
import logging
import tempfile
import time

import ray

from nas.run.api import search


def rate(workers: int, args: argparse.Namespace, out: str, run: int) -> float:
    """Evaluations per hour of one run with ``workers`` concurrent trials."""
    start = time.perf_counter()
    result = search(space=args.space, strategy="random", evaluator="proxy",
                    evaluator_options={"epochs": args.epochs}, budget=args.budget, seed=0, out=out,
                    run_id=f"w{workers}-{run}", backend="ray",
                    ray={"workers": workers, "cpus_per_trial": 1})
    wall = time.perf_counter() - start
    ok = int((result.trials["status"] == "ok").sum())
    inside = float(result.trials["wall_s"].sum())  # time inside the evaluator, on the workers
    print(f"  {workers} worker(s): {len(result.trials)} evaluations ({ok} ok) in {wall:6.1f} s "
          f"= {3600 * len(result.trials) / wall:7.0f} per hour; {inside / len(result.trials):5.1f} s "
          f"per evaluation inside the evaluator, workers busy {inside / (workers * wall):.0%} of the run",
          flush=True)
    return wall / len(result.trials)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--space", default="mbconv")
    args = parser.parse_args()
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR)
    seconds: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as out:
        for r in range(args.rounds):
            for workers in ((1, 2) if r % 2 == 0 else (2, 1)):
                seconds[workers].append(rate(workers, args, out, r))
    ray.shutdown()
    per_hour = {w: 3600 * len(s) / sum(s) for w, s in seconds.items()}
    print(f"evaluations per hour: 1 worker {per_hour[1]:.0f}, 2 workers {per_hour[2]:.0f}")
    print(f"ratio 2 workers / 1 worker: {per_hour[2] / per_hour[1]:.2f} (target >= 1.8)")


if __name__ == "__main__":
    main()
