"""DARTS on mbconv and digits: search time, and how the derived network ranks among random ones.

The supernet of ``mbconv`` (every stage's 24 MBConv variants and its depths, EfficientNet-B0's
resolution and width) trains on digits at 32 px with Gumbel-sampled paths (GDAS), first-order
bilevel steps, for ``--epochs``. The derived architecture is then trained with the proxy recipe
(ProxyEvaluator's defaults) next to ``--random`` seeded-random members trained the same way;
printed: the search time (target <= 10 minutes on 2 cores) and the derived network's percentile
among the random ones (target >= 75th), each accuracy the mean over ``--seeds`` proxy seeds.

    python benchmarks/darts_digits.py [--epochs 25] [--warmup 5] [--alpha-lr 0.01] [--random 20] [--seeds 2]
"""
from __future__ import annotations

import argparse
import random
import time

import numpy as np
import torch

from evaluators.data import load_dataset
from evaluators.proxy import ProxyEvaluator
from nas.strategies.darts import DartsConfig
from nas.strategies.darts_training import darts_search
from search_spaces import load_space
from search_spaces.supernet import Supernet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--alpha-lr", type=float, default=0.01)
    parser.add_argument("--random", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    space = load_space("mbconv")
    data = load_dataset("digits")
    torch.manual_seed(args.seed)
    net = Supernet(space, 224, 1.0, data.num_classes)
    cfg = DartsConfig(epochs=args.epochs, warmup_epochs=args.warmup, alpha_lr=args.alpha_lr, seed=args.seed)
    start = time.perf_counter()
    result = darts_search(net, data, cfg, torch.device("cpu"))
    search_s = time.perf_counter() - start
    print(f"DARTS (gumbel, first order) on mbconv/digits at 32 px: {args.epochs} epochs in {search_s:.0f} s "
          f"({torch.get_num_threads()} threads){'; ' + result.stopped if result.stopped else ''}")
    print(f"derived: {result.derived}")
    proxies = [ProxyEvaluator(seed=s) for s in range(args.seeds)]
    for proxy in proxies:
        proxy.check_space(space)

    def score(arch) -> float:
        return float(np.mean([p(arch)["accuracy"] for p in proxies]))

    derived = score(result.derived)
    rng = random.Random(args.seed + 1)
    randoms = [score(space.sample(rng)) for _ in range(args.random)]
    percentile = 100 * np.mean([derived > r for r in randoms]) + 50 * np.mean([derived == r for r in randoms])
    print(f"proxy accuracy (mean of {args.seeds} seeds): derived {derived:.2f}%; {args.random} random: "
          f"median {np.median(randoms):.2f}%, best {max(randoms):.2f}%")
    print(f"derived percentile among random: {percentile:.0f} (target >= 75); search {search_s / 60:.1f} min "
          f"(target <= 10)")


if __name__ == "__main__":
    main()
