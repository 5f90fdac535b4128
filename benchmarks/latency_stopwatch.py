"""Does a run's ``latency_ms`` agree with a stopwatch? nas's latencies against a plain timing loop.

For each source it runs, as a user would (``nas`` in a subprocess), a random search over ``--n``
members of ``--space`` with the cost evaluator and that latency source, reads the run's
``latency_ms`` column, and times the same networks with the plain stopwatch of
``benchmarks/stopwatch.py``, which shares no code with ``evaluators/latency`` (this process never
imports it: the script checks). Sources:

- ``table`` and ``learned``: predicted from the device profile (profiled and fitted first when
  ``--out`` has none: ``nas latency profile`` then ``nas latency fit``);
- ``measured``: timed by nas during the run;
- ``int8``: measured with ``latency.dtype=int8`` (the stopwatch quantizes with torch's FX flow itself);
- ``onnxruntime``: measured with ``latency.runtime=onnxruntime`` (the stopwatch exports and runs its
  own ONNX Runtime session).

Per source: the ratio run / stopwatch (median, min, max), MAPE, share within 10 % and Kendall tau,
against the median of ``--passes`` stopwatch passes (this machine's speed drifts by tens of percent
over a minute, so one pass can land in a slow stretch); then the stopwatch's second pass against its
first, the floor under any single comparison.

    python benchmarks/latency_stopwatch.py [--space mbconv] [--n 30] [--seed 7] [--threads 1]
        [--sources table,learned,measured,int8,onnxruntime] [--out /tmp/stopwatch] [--fit 100]

Targets (issue 33): table and learned with median ratio in [0.95, 1.10], >= 90 % within 10 %,
Kendall tau >= 0.95; int8 and ONNX Runtime printed the same way.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy.stats import kendalltau

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stopwatch import stopwatch

SOURCES = ("table", "learned", "measured", "int8", "onnxruntime")
ENGINE = {"table": "eager", "learned": "eager", "measured": "eager", "int8": "int8", "onnxruntime": "onnxruntime"}
RUN_KEYS = {
    "table": ["latency=table"], "learned": ["latency=learned"], "measured": ["latency=measured"],
    "int8": ["latency=measured", "latency.dtype=int8"],
    "onnxruntime": ["latency=measured", "latency.runtime=onnxruntime"],
}


def nas(*args: str) -> None:
    """Run a ``nas`` command as a user would; stop the benchmark if it fails."""
    command = [str(Path(sys.executable).with_name("nas")), *args]
    print("$", " ".join(command[1:]), flush=True)
    start = time.perf_counter()
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    print(f"  {time.perf_counter() - start:.0f} s", flush=True)


def read_run(folder: Path) -> tuple[list[str], np.ndarray, int]:
    """The distinct ok archs of a finished run, their ``latency_ms`` and the classes it timed with."""
    trials = pd.read_csv(folder / "trials.csv")
    ok = trials[trials["status"] == "ok"].drop_duplicates("arch")
    config = yaml.safe_load((folder / "config.yaml").read_text())
    # what the run timed: latency.num_classes, else the evaluator's classes (as nas/run/runlatency.py)
    num_classes = int((config.get("latency") or {}).get("num_classes")
                      or (config.get("evaluator") or {}).get("num_classes") or 1000)
    return ok["arch"].tolist(), ok["latency_ms"].astype(float).to_numpy(), num_classes


def run_latencies(args: argparse.Namespace, source: str) -> tuple[list[str], np.ndarray, int]:
    """The archs, ``latency_ms`` and number of classes of a random search with ``source``."""
    run_id = f"stopwatch-{source}-seed{args.seed}"
    folder = Path(args.out) / "runs" / run_id
    if not (folder / "trials.csv").exists():
        nas("run", f"space={args.space}", "evaluator=cost", "strategy=random", f"budget={args.n}",
            f"seed={args.seed}", "select=none", "baselines=none", "progress=false", f"out={args.out}",
            f"run_id={run_id}", f"latency.threads={args.threads}", f"latency.batch={args.batch}",
            *RUN_KEYS[source])
    return read_run(folder)


def row(label: str, got: np.ndarray, truth: np.ndarray) -> str:
    ratio, rel = got / truth, np.abs(got - truth) / truth
    return (f"{label:<26}{len(got):>4}{np.median(ratio):>8.3f}{ratio.min():>7.3f}{ratio.max():>7.3f}"
            f"{100 * rel.mean():>8.1f}{100 * np.mean(rel <= 0.10):>7.0f}{kendalltau(got, truth).statistic:>7.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="mbconv")
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--sources", default=",".join(SOURCES))
    parser.add_argument("--out", default="/tmp/stopwatch", help="profiles and runs go here")
    parser.add_argument("--calibrate", type=int, default=40)
    parser.add_argument("--fit", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--builds", type=int, default=3, help="builds of each network (placements)")
    parser.add_argument("--passes", type=int, default=3, help="stopwatch passes; each network's median")
    args = parser.parse_args()
    sources = args.sources.split(",")
    unknown = set(sources) - set(SOURCES)
    if unknown:
        sys.exit(f"--sources: {sorted(unknown)} not among {', '.join(SOURCES)}")
    setting = [f"space={args.space}", f"threads={args.threads}", f"batch={args.batch}", f"out={args.out}",
               "progress=false"]
    if {"table", "learned"} & set(sources):
        nas("latency", "profile", *setting, f"calibrate={args.calibrate}")
    if "learned" in sources:
        nas("latency", "fit", *setting, f"n={args.fit}")
    results, timed = [], {}
    for source in sources:
        archs, latency_ms, num_classes = run_latencies(args, source)
        key = (ENGINE[source], tuple(archs), num_classes)
        if key not in timed:  # the eager sources share their networks: timed once
            start = time.perf_counter()
            timed[key] = passes(args, archs, num_classes, ENGINE[source])
            print(f"{source}: {len(archs)} networks x {args.passes} stopwatch passes "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
        results.append((source, latency_ms, timed[key]))
    assert "evaluators.latency" not in sys.modules  # the stopwatch shares nothing with nas's timing
    print(f"\n{args.space}, {args.threads} thread(s), batch {args.batch}, seed {args.seed}; run / stopwatch "
          f"(the median of {args.passes} passes):")
    print(f"{'source':<26}{'n':>4}{'median':>8}{'min':>7}{'max':>7}{'MAPE %':>8}{'<=10%':>7}{'tau':>7}")
    for source, latency_ms, watch in results:
        print(row(source, latency_ms, np.median(watch, axis=0)))
    for (engine, _, _), watch in timed.items():
        if len(watch) >= 2:
            print(row(f"stopwatch pass 2 / 1 ({engine})", watch[1], watch[0]))


def passes(args: argparse.Namespace, archs: list[str], num_classes: int, engine: str) -> np.ndarray:
    """(passes, networks) stopwatch medians, every other pass in reverse order: on a machine whose
    speed drifts by tens of percent over a minute, one pass can land in a slow stretch."""
    rows = []
    for p in range(args.passes):
        order = list(range(len(archs)))[:: 1 if p % 2 == 0 else -1]
        ms = stopwatch([archs[i] for i in order], num_classes, args.batch, args.threads, engine,
                       rounds=args.rounds, runs=args.runs, builds=args.builds)
        row_ = np.empty(len(archs))
        row_[order] = ms
        rows.append(row_)
    return np.asarray(rows)

if __name__ == "__main__":
    main()
