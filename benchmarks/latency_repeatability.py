"""Where does latency measurement noise come from? Two passes over the same networks, per protocol.

Measures ``--n`` seeded-random ``mbconv`` members (1 thread, batch 1, channels_last, inference
mode) twice with each protocol and prints how the second pass agrees with the first (MAPE, share
within 5% and 10%, Kendall tau). Protocols differ in one thing at a time:

- ``plain``: the simplest loop: every network built first, 3 warm-up runs each, then 10 rounds of
  3 runs interleaved over all of them; median per network (no nas code but the builder).
- ``chunks``: nas's ``Measurer.networks`` over chunks of ``--chunk`` networks, the second pass in
  reverse order (how ``nas latency eval`` measured before this benchmark).
- ``chunks-same-order``: the same, both passes in the same order (same chunks, same weights).
- ``all``: nas's ``Measurer.networks`` over all networks at once, second pass reversed.
- ``chunks-flush-denormal``: ``chunks`` with ``torch.set_flush_denormal(True)``.
- ``same-build``: ``chunks`` with every network built once, its two passes measured on the same
  objects (nothing rebuilt, the weights where they were).
- ``replaced``: ``same-build``, but before the second pass every weight is copied to new memory
  (same values, same objects, another placement).
- ``per-round``: ``chunks`` with the weights moved to new memory before each round
  (``placement=per-round``): the median spans 10 placements.
- ``reference``: ``chunks`` with each group of runs scaled by a reference matrix product timed
  right before it (``reference=matmul``), one nominal reference time for both passes.
- ``default``: both, with ``nas latency``'s own settings (20 rounds of one run each).
- ``rounds=R``: ``default`` with ``R`` rounds of one run each (``R`` placements, ``R`` repeats);
  ``KEY=VALUE``: ``default`` with one other measurement setting (e.g. ``reference=matmul``).

Protocols measured with nas's ``Measurer`` print two rows from the same runs: the median of each
network's runs, and the mean of their faster half (``statistic=lower-half``, nas's default now).

``--denormals N`` instead counts subnormal floats in the weights and activations of N members (6,
seed 3) at inference: if there were many, ``torch.set_flush_denormal`` would be the fix.

    python benchmarks/latency_repeatability.py [--n 30] [--chunk 8] [--protocols plain,chunks,...] [--denormals 6]
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stopwatch import stopwatch

from evaluators.latency.measure import LatencySettings, Measurement, Measurer
from evaluators.latency.runtimes.eager import replace_weights
from search_spaces import load_space
from search_spaces.builder import build_model

PROTOCOLS = ("plain", "chunks", "chunks-same-order", "all", "chunks-flush-denormal", "same-build", "replaced",
             "per-round", "reference", "default")


def plain(archs, order) -> list[float]:
    """The plain stopwatch (benchmarks/stopwatch.py), the networks timed in ``order``."""
    ms = stopwatch([str(archs[i]) for i in order], num_classes=1000)
    by_index = dict(zip(order, ms))
    return [by_index[i] for i in range(len(archs))]


def chunked(archs, order, chunk: int, measurer: Measurer) -> list[Measurement]:
    out: list[Measurement] = [None] * len(archs)  # type: ignore[list-item]
    for start in range(0, len(order), chunk):
        part = order[start:start + chunk]
        for i, m in zip(part, measurer.networks([archs[i] for i in part])):
            out[i] = m
    return out


def same_build(archs, chunk: int, measurer: Measurer, move: bool) -> tuple[list[Measurement], list[Measurement]]:
    """Two passes over the same built networks (per chunk), the weights moved between them if ``move``."""
    first: list[Measurement] = [None] * len(archs)  # type: ignore[list-item]
    second: list[Measurement] = [None] * len(archs)  # type: ignore[list-item]
    for start in range(0, len(archs), chunk):
        idx = list(range(start, min(start + chunk, len(archs))))
        torch.manual_seed(0)
        items = [(build_model(archs[i], 1000), (3, archs[i].resolution, archs[i].resolution)) for i in idx]
        for i, m in zip(idx, measurer.measure_many(items)):
            first[i] = m
        if move:
            for module, _ in items:
                replace_weights(module)
        for i, m in zip(idx, measurer.measure_many(items)):
            second[i] = m
    return first, second


def count_denormals(n: int, seed: int) -> None:
    space, rng, tiny = load_space("mbconv"), random.Random(seed), torch.finfo(torch.float32).tiny
    weights = activations = subnormal_w = subnormal_a = 0
    for i in range(n):
        arch = space.sample(rng)
        torch.manual_seed(i)
        model = build_model(arch, 1000).eval()
        for p in model.parameters():
            subnormal_w += int(((p.abs() < tiny) & (p != 0)).sum())
            weights += p.numel()
        counts = [0, 0]

        def hook(module, inputs, out, counts=counts):
            if isinstance(out, torch.Tensor):
                counts[0] += int(((out.abs() < tiny) & (out != 0)).sum())
                counts[1] += out.numel()

        hooks = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
        with torch.inference_mode():
            model(torch.randn(1, 3, arch.resolution, arch.resolution))
        for h in hooks:
            h.remove()
        subnormal_a += counts[0]
        activations += counts[1]
    print(f"{n} mbconv members: {subnormal_w} of {weights:,} weights and {subnormal_a} of {activations:,} "
          f"activations are subnormal")


def agreement(a, b) -> str:
    a, b = np.asarray(a), np.asarray(b)
    rel = np.abs(b - a) / a
    return (f"MAPE {100 * rel.mean():5.1f}%  within 5% {100 * np.mean(rel <= .05):4.0f}%  "
            f"within 10% {100 * np.mean(rel <= .10):4.0f}%  tau {kendalltau(a, b).statistic:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--chunk", type=int, default=8)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--protocols", default=",".join(PROTOCOLS))
    parser.add_argument("--denormals", type=int, default=0, metavar="N")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.denormals:
        count_denormals(args.denormals, args.seed)
        return
    space = load_space("mbconv")
    rng, archs = random.Random(args.seed), []
    while len(archs) < args.n:
        arch = space.canonical(space.sample(rng))
        if arch not in archs:
            archs.append(arch)
    forward, backward = list(range(args.n)), list(range(args.n))[::-1]
    old = Measurer(LatencySettings(warmup=3, repeats=30, rounds=10, placement="fixed", reference="none"))
    moved = Measurer(LatencySettings(warmup=3, repeats=30, rounds=10, placement="per-round", reference="none"))
    scaled = Measurer(LatencySettings(warmup=3, repeats=30, rounds=10, placement="fixed", reference="matmul"))
    default = Measurer(LatencySettings(warmup=3))  # nas latency's own: 20 rounds of one run
    runs = {
        "plain": lambda reverse: plain(archs, backward if reverse else forward),
        "chunks": lambda reverse: chunked(archs, backward if reverse else forward, args.chunk, old),
        "chunks-same-order": lambda reverse: chunked(archs, forward, args.chunk, old),
        "all": lambda reverse: chunked(archs, backward if reverse else forward, args.n, old),
        "chunks-flush-denormal": lambda reverse: chunked(archs, backward if reverse else forward, args.chunk, old),
        "per-round": lambda reverse: chunked(archs, backward if reverse else forward, args.chunk, moved),
        "reference": lambda reverse: chunked(archs, backward if reverse else forward, args.chunk, scaled),
        "default": lambda reverse: chunked(archs, backward if reverse else forward, args.chunk, default),
    }
    print(f"{args.n} mbconv members, 1 thread, batch 1; second pass against the first")
    for name in args.protocols.split(","):
        torch.set_flush_denormal(name == "chunks-flush-denormal")
        start = time.perf_counter()
        if "=" in name:
            key, _, value = name.partition("=")
            setting = {"repeats": int(value), "rounds": int(value)} if key == "rounds" else {key: value}
            measurer = Measurer(LatencySettings(warmup=3, **setting))
            first = chunked(archs, forward, args.chunk, measurer)
            second = chunked(archs, backward, args.chunk, measurer)
        elif name in ("same-build", "replaced"):
            first, second = same_build(archs, args.chunk, old, move=name == "replaced")
        else:
            first, second = runs[name](False), runs[name](True)
        seconds = time.perf_counter() - start
        rows = [(name, first, second)] if not isinstance(first[0], Measurement) else [
            (f"{name} ({stat})", [getattr(m, attr) for m in first], [getattr(m, attr) for m in second])
            for stat, attr in (("median", "median_ms"), ("lower-half", "latency_ms"))]
        for label, a, b in rows:
            print(f"{label:<34} {agreement(a, b)}   {min(a):.1f}-{max(a):.1f} ms, {seconds:.0f} s", flush=True)
    torch.set_flush_denormal(False)


if __name__ == "__main__":
    main()
