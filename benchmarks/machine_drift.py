"""How steady is this machine? One fixed network timed back to back for a while, in windows.

The simplest possible loop (no nas measurement code): a seeded ``mbconv`` member (or a 256x256
matmul with ``--matmul``), 1 thread, batch 1, built once, run continuously for ``--seconds``; prints
the median of each ``--window``-second window relative to the first window, and the spread of the
window medians. If these move by more than a latency target's tolerance, no measurement protocol
on this machine can meet it, and the number says by how much. ``--reference`` alternates each run
with a 256x256 matmul and prints the spread of the ratio too: whether timing a fixed reference
beside a network would cancel the drift.

    python benchmarks/machine_drift.py [--seconds 120] [--window 5] [--matmul] [--reference]
"""
from __future__ import annotations

import argparse
import random
import statistics
import time

import numpy as np
import torch

from search_spaces import load_space
from search_spaces.builder import build_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--window", type=float, default=5)
    parser.add_argument("--matmul", action="store_true")
    parser.add_argument("--reference", action="store_true")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.matmul:
        x = torch.randn(256, 256)
        run, what = (lambda: x @ x), "matmul 256x256"
    else:
        arch = load_space("mbconv").sample(random.Random(args.seed))
        torch.manual_seed(0)
        model = build_model(arch, 1000).eval().to(memory_format=torch.channels_last)
        inp = torch.randn(1, 3, arch.resolution, arch.resolution).to(memory_format=torch.channels_last)
        run, what = (lambda: model(inp)), f"mbconv member at {arch.resolution} px"
    ref_x = torch.randn(256, 256)
    windows: list[float] = []
    refs: list[float] = []
    with torch.inference_mode():
        for _ in range(3):
            run()
        end = time.perf_counter() + args.seconds
        while time.perf_counter() < end:
            stop, times, ref_times = time.perf_counter() + args.window, [], []
            while time.perf_counter() < stop:
                t = time.perf_counter()
                run()
                times.append((time.perf_counter() - t) * 1e3)
                if args.reference:
                    t = time.perf_counter()
                    for _ in range(4):
                        ref_x @ ref_x
                    ref_times.append((time.perf_counter() - t) * 1e3)
            windows.append(statistics.median(times))
            if args.reference:
                refs.append(statistics.median(ref_times))
    report(what, np.array(windows), args.window)
    if args.reference:
        report("reference (4 matmuls 256x256)", np.array(refs), args.window)
        report(f"{what} / reference", np.array(windows) / np.array(refs), args.window)


def report(what: str, windows: np.ndarray, window_s: float) -> None:
    rel = windows / windows[0]
    within = 100 * np.mean(np.abs(rel - np.median(rel)) / np.median(rel) <= 0.10)
    print(f"{what}, 1 thread: {len(windows)} windows of {window_s:g} s; median per window relative to the "
          f"first: {' '.join(f'{r:.2f}' for r in rel)}")
    print(f"  range {rel.min():.2f}-{rel.max():.2f}x, std {100 * np.std(rel):.1f}%; {within:.0f}% of windows "
          f"within 10% of the median window")


if __name__ == "__main__":
    main()
