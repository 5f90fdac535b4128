"""Are nas's latencies in a stopwatch's milliseconds? Each measurement protocol against a plain loop.

Times ``--n`` seeded-random members of ``--space`` and four hand-designed networks (EfficientNet-B0,
MobileNetV2, MobileNetV3-Large at 128 px, ResNet-18) with the plain stopwatch of
``benchmarks/stopwatch.py`` (no ``evaluators`` code), then with nas's ``Measurer`` under each
``--protocols`` entry (``default``, or ``KEY=VALUE[,KEY=VALUE]`` over the measurement settings),
then with the stopwatch again; all in one process, one after the other, on the same built networks'
strings. Each protocol prints the ratio of its latency to the stopwatch's (median, min, max), MAPE,
share within 10 % and Kendall tau; the stopwatch's second pass against its first is the floor.

It also names the two effects that once made nas's numbers differ from a stopwatch's:
- ``reference``: the reference workload's median time in a tight loop of 400 back-to-back runs (how
  the nominal was taken until 2026-12-07) against its time when run between rounds of the networks
  (how it was timed beside them); their ratio was the factor every latency was scaled by;
- ``first call``: a network's first call in a round (after other networks ran) against the calls
  right after it: nas timed only first calls until 2026-12-07.

    python benchmarks/latency_units.py [--n 16] [--threads 1] [--protocols default,reference=none]
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stopwatch import build, stopwatch

from evaluators.latency.measure import LatencySettings, Measurer
from evaluators.latency.reference import reference_workload
from search_spaces import load_space, zoo

ZOO = ("efficientnet_b0", "mobilenet_v2", "mobilenet_v3_large@128", "resnet18")


def networks(space_name: str, n: int, seed: int) -> list[str]:
    space, rng = load_space(space_name), random.Random(seed)
    archs = [str(space.sample(rng)) for _ in range(n)]
    for name in ZOO:
        base, _, res = name.partition("@")
        arch = zoo.reference(base)
        archs.append(str(arch.replace(resolution=int(res)) if res else arch))
    return archs


def compare(label: str, got: list[float], truth: list[float]) -> str:
    g, t = np.asarray(got), np.asarray(truth)
    ratio, rel = g / t, np.abs(g - t) / t
    tau = kendalltau(g, t).statistic
    return (f"{label:<34}{np.median(ratio):>7.3f}{ratio.min():>7.3f}{ratio.max():>7.3f}"
            f"{100 * rel.mean():>8.1f}{100 * np.mean(rel <= 0.10):>7.0f}{tau:>7.3f}")


def reference_effect(archs: list[str], threads: int, num_classes: int) -> tuple[float, float]:
    """The block reference's median ms in a tight loop, and between runs of the networks."""
    torch.set_num_threads(threads)
    ref = reference_workload("block")

    def once() -> float:
        begin = time.perf_counter()
        ref()
        return (time.perf_counter() - begin) * 1e3

    for _ in range(20):
        once()
    tight = statistics.median(once() for _ in range(400))
    calls = [build(a, num_classes, 1, "eager", threads) for a in archs]
    between = []
    for _ in range(10):
        for call in calls:
            call()
            between.append(once())
    return tight, statistics.median(between)


def first_call_effect(archs: list[str], threads: int, num_classes: int) -> float:
    """Median over networks of (first call in a round) / (median of the next two calls)."""
    torch.set_num_threads(threads)
    calls = [build(a, num_classes, 1, "eager", threads) for a in archs]
    ratios: list[list[float]] = [[] for _ in calls]
    for call in calls:
        call()
    for _ in range(10):
        for call, r in zip(calls, ratios):
            t = []
            for _ in range(3):
                begin = time.perf_counter()
                call()
                t.append(time.perf_counter() - begin)
            r.append(t[0] / statistics.median(t[1:]))
    return float(np.median([statistics.median(r) for r in ratios]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="mbconv")
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--protocols", default="default,reference=none,statistic=median,reference=block")
    args = parser.parse_args()
    archs = networks(args.space, args.n, args.seed)
    print(f"{len(archs)} networks ({args.n} {args.space} members seed {args.seed}, {', '.join(ZOO)}), "
          f"{args.threads} thread(s), batch 1, {args.num_classes} classes")
    first = stopwatch(archs, args.num_classes, threads=args.threads)
    rows = []
    for spec in args.protocols.split(","):
        overrides: dict[str, object] = {}
        if spec != "default":
            for item in spec.split(";"):
                key, _, value = item.partition("=")
                overrides[key] = int(value) if value.isdigit() else value
        measurer = Measurer(LatencySettings(threads=args.threads, **overrides))
        got = [m.latency_ms for m in measurer.networks(archs, args.num_classes)]
        rows.append((spec, got))
    second = stopwatch(archs, args.num_classes, threads=args.threads)
    print(f"{'against the stopwatch (pass 1)':<34}{'ratio':>7}{'min':>7}{'max':>7}{'MAPE %':>8}{'<=10%':>7}{'tau':>7}")
    print(compare("stopwatch pass 2", second, first))
    for spec, got in rows:
        print(compare(f"nas {spec}", got, first))
    tight, between = reference_effect(archs, args.threads, args.num_classes)
    print(f"reference: {tight:.3f} ms in a tight loop, {between:.3f} ms between the networks' runs: "
          f"ratio {tight / between:.3f} (the old scale factor)")
    print(f"first call in a round / the calls after it: {first_call_effect(archs, args.threads, args.num_classes):.3f} "
          "(median over networks)")


if __name__ == "__main__":
    main()
