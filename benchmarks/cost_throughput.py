"""Architectures per second of the analytic cost model vs building + FlopCounterMode.

Draws seeded random members of the ``mbconv`` space; the analytic side runs on all of them, the
build-and-count side on a subset (it is orders of magnitude slower), and the two speeds are printed
with their ratio (target: >= 1,000 architectures per second for the analytic model).

    python benchmarks/cost_throughput.py [--n 3000] [--space mbconv]
"""
from __future__ import annotations

import argparse
import random
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from search_spaces import load_space
from search_spaces.builder import build_model
from search_spaces.cost import cost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--space", default="mbconv")
    args = parser.parse_args()
    space = load_space(args.space)
    rng = random.Random(0)
    archs = [space.sample(rng) for _ in range(args.n)]

    start = time.perf_counter()
    analytic = [cost(a) for a in archs]
    analytic_rate = len(archs) / (time.perf_counter() - start)

    subset = archs[:20]
    start = time.perf_counter()
    for arch, expected in zip(subset, analytic):
        with torch.device("meta"):
            model = build_model(arch)
            with FlopCounterMode(display=False) as counter:
                model(torch.zeros(1, 3, arch.resolution, arch.resolution))
        assert counter.get_total_flops() // 2 == expected.macs
        assert sum(p.numel() for p in model.parameters()) == expected.params
    built_rate = len(subset) / (time.perf_counter() - start)
    print(f"space {args.space}: analytic {analytic_rate:,.0f} archs/s over {len(archs)}; "
          f"build + FlopCounterMode (meta device) {built_rate:,.1f} archs/s over {len(subset)}; "
          f"speed-up {analytic_rate / built_rate:,.0f}x (results identical on the subset)")


if __name__ == "__main__":
    main()
