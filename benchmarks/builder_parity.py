"""Train-step time of our built models vs torchvision's, interleaved in one process.

For efficientnet_b0 and resnet50: forward + backward + SGD step on one batch, both models in train
mode, same batch, same thread count. Runs alternate (ours, theirs, theirs, ours, ...) after a
warm-up so that machine noise hits both alike; printed are the medians, the median of the
per-round ratios (each round times both models back to back, so slow drifts of a shared machine
cancel) and its interquartile range, which shows how far noise reaches (target <= 1.02).

Defaults (batch 8 at 128 px, 2 threads) keep a full run to a few minutes on a 2-core CPU; pass
``--resolution 224`` for the models' native size.

    python benchmarks/builder_parity.py [--batch 8] [--resolution 128] [--repeats 15] [--threads 2]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torchvision

from search_spaces import zoo
from search_spaces.builder import build_model


def step_time(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> float:
    start = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    return time.perf_counter() - start


def compare(name: str, batch: int, resolution: int, repeats: int) -> tuple[float, float, list[float]]:
    torch.manual_seed(0)
    x = torch.randn(batch, 3, resolution, resolution)
    y = torch.randint(0, 1000, (batch,))
    models = {"ours": build_model(zoo.reference(name)), "torchvision": getattr(torchvision.models, name)()}
    opts = {k: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9) for k, m in models.items()}
    for m in models.values():
        m.train()
    times: dict[str, list[float]] = {k: [] for k in models}
    for i in range(repeats + 2):  # the first two rounds warm up allocators and kernels
        order = list(models) if i % 2 == 0 else list(models)[::-1]
        for key in order:
            t = step_time(models[key], opts[key], x, y)
            if i >= 2:
                times[key].append(t)
    ratios = [a / b for a, b in zip(times["ours"], times["torchvision"])]
    return statistics.median(times["ours"]), statistics.median(times["torchvision"]), ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"batch {args.batch}, {args.resolution}px, {args.threads} threads, {args.repeats} interleaved repeats")
    print(f"{'model':<18}{'ours ms':>10}{'tv ms':>10}{'ratio':>8}{'ratio IQR':>16}")
    for name in ("efficientnet_b0", "resnet50"):
        ours, theirs, ratios = compare(name, args.batch, args.resolution, args.repeats)
        q1, _, q3 = statistics.quantiles(ratios, n=4)
        print(f"{name:<18}{ours * 1e3:>10.1f}{theirs * 1e3:>10.1f}{statistics.median(ratios):>8.3f}"
              f"{q1:>8.3f}-{q3:.3f}")


if __name__ == "__main__":
    main()
