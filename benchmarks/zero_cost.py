"""Zero-cost proxies vs the truth: Spearman rank correlation with NAS-Bench-Macro's mean accuracy.

``--n`` seeded-random architectures of the ``nasbench_macro`` space (seed 0) are scored by every
proxy on one batch of 64 images at 32x32: the digits (upscaled) by default, or Gaussian noise with
``--inputs random``. Printed per proxy: Spearman's rho with the table's mean CIFAR-10 accuracy and
the time per architecture (building the network included). Then the time per architecture of
``--mbconv`` seeded-random members of the ``mbconv`` space (EfficientNet-B0-sized) at 32 px, the
issue's bound being 1 s.

    python benchmarks/zero_cost.py [--table PATH] [--n 500] [--inputs data|random] [--mbconv 20]
"""
from __future__ import annotations

import argparse
import os
import random
import time
from pathlib import Path

from scipy.stats import spearmanr

from evaluators.tabular import NasBenchMacro
from evaluators.zero_cost import PROXIES, ZeroCostEvaluator
from search_spaces import load_space

DEFAULT_TABLE = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "nas-bench-macro_cifar10.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default=os.environ.get("NAS_BENCH_MACRO", str(DEFAULT_TABLE)))
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--inputs", choices=("data", "random"), default="data")
    parser.add_argument("--proxies", nargs="*", default=list(PROXIES))
    parser.add_argument("--mbconv", type=int, default=20, help="mbconv architectures to time (0: skip)")
    args = parser.parse_args()
    space = load_space("nasbench_macro")
    table = NasBenchMacro(args.table)
    rng, archs, keys = random.Random(0), [], set()
    while len(archs) < args.n:  # distinct networks (identity-order twins count once)
        arch = space.sample(rng)
        if space.key(arch) not in keys:
            keys.add(space.key(arch))
            archs.append(arch)
    truth = [table(a)["accuracy"] for a in archs]
    print(f"NAS-Bench-Macro, {args.n} random architectures, inputs: "
          f"{'digits at 32x32' if args.inputs == 'data' else 'Gaussian noise 32x32'}, batch 64")
    print(f"{'proxy':<12}{'spearman':>10}{'ms/arch':>10}")
    for proxy in args.proxies:
        evaluator = ZeroCostEvaluator(proxy=proxy, inputs=args.inputs)
        evaluator.check_space(space)
        start = time.perf_counter()
        scores = [evaluator(a)["zero_cost"] for a in archs]
        ms = (time.perf_counter() - start) * 1e3 / len(archs)
        rho = spearmanr(scores, truth).statistic
        print(f"{proxy:<12}{rho:>10.3f}{ms:>10.1f}", flush=True)
    if args.mbconv:
        time_on_mbconv(args.proxies, args.mbconv, args.inputs)


def time_on_mbconv(proxies: list[str], n: int, inputs: str) -> None:
    """Seconds per architecture of the mbconv space at 32 px, per proxy."""
    space = load_space("mbconv")
    rng = random.Random(0)
    archs = [space.sample(rng) for _ in range(n)]
    print(f"\nmbconv, {n} random architectures at 32 px (base resolution), batch 64")
    print(f"{'proxy':<12}{'s/arch':>10}{'max s':>10}")
    for proxy in proxies:
        evaluator = ZeroCostEvaluator(proxy=proxy, inputs=inputs, resolution=32)
        evaluator.check_space(space)
        times = []
        for arch in archs:
            start = time.perf_counter()
            evaluator(arch)
            times.append(time.perf_counter() - start)
        print(f"{proxy:<12}{sum(times) / n:>10.3f}{max(times):>10.3f}", flush=True)


if __name__ == "__main__":
    main()
