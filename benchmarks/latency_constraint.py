"""Does a latency-constrained search keep its promise? Its accepted candidates on a plain stopwatch.

Runs ``nas run space=mbconv evaluator=cost max_latency_ms=BOUND budget=BUDGET`` (``--seeds`` runs,
seeds 0..N-1, in a subprocess as a user would) with the profile for this machine's settings under
``--out`` (profiled first, with ``--calibrate`` networks, when there is none), so each proposal's
latency is predicted (latency=auto) and proposals over the bound are never evaluated. Then every
accepted candidate is timed whole by the plain stopwatch of ``benchmarks/stopwatch.py`` (no code of
``evaluators/latency``), and the benchmark prints how many take longer than ``BOUND x (1 + --tolerance)``.

    python benchmarks/latency_constraint.py [--bound 20] [--budget 50] [--seeds 3] [--out /tmp/stopwatch]

Target (issue 33): at most 5% of accepted candidates above 20 ms x 1.1 on the stopwatch.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from latency_stopwatch import nas, read_run
from stopwatch import stopwatch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="mbconv")
    parser.add_argument("--bound", type=float, default=20.0)
    parser.add_argument("--tolerance", type=float, default=0.10)
    parser.add_argument("--budget", type=int, default=50)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--strategy", default="evolution")
    parser.add_argument("--out", default="/tmp/stopwatch", help="profiles are found (or made) under OUT/latency/")
    parser.add_argument("--calibrate", type=int, default=40)
    args = parser.parse_args()
    nas("latency", "profile", f"space={args.space}", f"out={args.out}", f"calibrate={args.calibrate}", "progress=false")
    limit = args.bound * (1 + args.tolerance)
    predicted_all, measured_all = [], []
    for seed in range(args.seeds):
        run_id = f"constraint-{args.strategy}-{args.bound:g}ms-seed{seed}"
        folder = Path(args.out) / "runs" / run_id
        if not (folder / "trials.csv").exists():
            nas("run", f"space={args.space}", f"strategy={args.strategy}", "evaluator=cost", f"budget={args.budget}",
                f"seed={seed}", f"out={args.out}", f"run_id={run_id}", f"max_latency_ms={args.bound}",
                "select=none", "baselines=none", "progress=false")
        archs, predicted, num_classes = read_run(folder)
        measured = np.asarray(stopwatch(archs, num_classes, builds=3))
        over = int(np.sum(measured > limit))
        print(f"seed {seed}: {len(archs)} accepted, predicted {predicted.min():.1f}-{predicted.max():.1f} ms, "
              f"stopwatch {measured.min():.1f}-{measured.max():.1f} ms, {over} above {limit:.1f} ms "
              f"({100 * over / len(archs):.1f}%)", flush=True)
        predicted_all.append(predicted)
        measured_all.append(measured)
    assert "evaluators.latency" not in sys.modules  # the stopwatch shares nothing with nas's timing
    predicted, measured = np.concatenate(predicted_all), np.concatenate(measured_all)
    rel = np.abs(predicted - measured) / measured
    over = measured > limit
    print(f"all seeds: {over.sum()} of {len(measured)} accepted candidates take longer than {limit:.1f} ms on the "
          f"stopwatch: {100 * over.mean():.1f}% (target <= 5); above {args.bound:.1f} ms: "
          f"{100 * np.mean(measured > args.bound):.1f}%; prediction / stopwatch median "
          f"{np.median(predicted / measured):.3f}, MAPE {100 * rel.mean():.1f}%, "
          f"{100 * np.mean(rel <= 0.10):.0f}% within 10%")


if __name__ == "__main__":
    main()
