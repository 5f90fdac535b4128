"""Which plain loop is the stopwatch? Three timing protocols side by side, none of them the project's.

The issue's stopwatch interleaves all networks, 3 calls each per round: the first call of a round
follows other networks' calls and finds cold caches. A user timing one network in a loop sees only
warm calls. This script times the same seeded ``mbconv`` members with

- ``interleaved``: 10 rounds x 3 calls, all networks interleaved, median (the issue's loop);
- ``interleaved+1``: the same, each round opened by one untimed call (what `Measurer` does);
- ``alone``: each network on its own, 3 warm-up calls, then 30 back-to-back calls, median;
- ``gated``: ``interleaved``, with each group of calls taken again while a probe timed right before
  it ran more than 10 % slower than usual (``stopwatch(gate=1.10)``);

in the order interleaved, interleaved+1, gated, alone, alone, gated, interleaved+1, interleaved (a drift that is
linear in time weighs on every protocol alike), and prints each protocol's latency relative to
``alone`` (median, min, max over networks) and each protocol's two passes against each other
(MAPE, share within 10 %).

    python benchmarks/stopwatch_protocols.py [--count 30] [--seed 7]
"""
from __future__ import annotations

import argparse
import random
import statistics

import numpy as np
from stopwatch import stopwatch

from search_spaces import load_space


def alone(archs: list[str]) -> list[float]:
    return [stopwatch([a], rounds=1, runs=30)[0] for a in archs]


PROTOCOLS = {
    "interleaved": lambda archs: stopwatch(archs),
    "interleaved+1": lambda archs: stopwatch(archs, untimed=1),
    "alone": alone,
    "gated": lambda archs: stopwatch(archs, gate=1.10),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    space, rng = load_space("mbconv"), random.Random(args.seed)
    archs = [str(space.sample(rng)) for _ in range(args.count)]
    order = ["interleaved", "interleaved+1", "gated", "alone", "alone", "gated", "interleaved+1", "interleaved"]
    passes: dict[str, list[np.ndarray]] = {name: [] for name in PROTOCOLS}
    for name in order:
        passes[name].append(np.array(PROTOCOLS[name](archs)))
        print(f"{name}: median {statistics.median(passes[name][-1]):.2f} ms", flush=True)
    base = np.mean(passes["alone"], axis=0)
    print(f"\n{len(archs)} members of mbconv (seed {args.seed}), 1 thread, batch 1\n")
    print(f"{'protocol':<16}{'/ alone: median':>16}{'min':>7}{'max':>7}{'pass 2 vs 1: MAPE':>20}{'within 10%':>12}")
    for name, (first, second) in passes.items():
        ratio = np.mean([first, second], axis=0) / base
        mape = np.mean(np.abs(second - first) / first) * 100
        within = np.mean(np.abs(second - first) / first <= 0.10) * 100
        print(f"{name:<16}{np.median(ratio):>16.3f}{ratio.min():>7.3f}{ratio.max():>7.3f}"
              f"{mape:>19.1f}%{within:>11.0f}%")


if __name__ == "__main__":
    main()
