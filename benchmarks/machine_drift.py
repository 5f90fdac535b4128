"""How steady is this machine? One fixed network timed back to back for a while, in windows.

The simplest possible loop (no nas measurement code): a seeded ``mbconv`` member (or a 256x256
matmul with ``--matmul``), 1 thread, batch 1, built once, run continuously for ``--seconds``; prints
the median of each ``--window``-second window relative to the first window, and the spread of the
window medians. If these move by more than a latency target's tolerance, no measurement protocol
on this machine can meet it, and the number says by how much. ``--reference`` alternates each run
with nas's two reference workloads (``block``: an inverted-residual block; ``matmul``: two 256x256
matrix products, ``evaluators/latency/reference.py``) and prints the spread of each ratio too:
whether timing that reference beside a network cancels the drift.

    python benchmarks/machine_drift.py [--seconds 120] [--window 5] [--matmul] [--reference]
"""
from __future__ import annotations

import argparse
import random
import statistics
import time

import numpy as np
import torch

from evaluators.latency.reference import reference_workload
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
    references = {name: reference_workload(name) for name in ("block", "matmul")}
    windows: list[float] = []
    refs: dict[str, list[float]] = {name: [] for name in references}
    with torch.inference_mode():
        for _ in range(3):
            run()
        end = time.perf_counter() + args.seconds
        while time.perf_counter() < end:
            stop, times = time.perf_counter() + args.window, []
            ref_times: dict[str, list[float]] = {name: [] for name in references}
            while time.perf_counter() < stop:
                t = time.perf_counter()
                run()
                times.append((time.perf_counter() - t) * 1e3)
                for name, workload in references.items() if args.reference else ():
                    t = time.perf_counter()
                    workload()
                    ref_times[name].append((time.perf_counter() - t) * 1e3)
            windows.append(statistics.median(times))
            for name in references if args.reference else ():
                refs[name].append(statistics.median(ref_times[name]))
    report(what, np.array(windows), args.window)
    for name in references if args.reference else ():
        report(f"reference {name}", np.array(refs[name]), args.window)
        report(f"{what} / reference {name}", np.array(windows) / np.array(refs[name]), args.window)


def report(what: str, windows: np.ndarray, window_s: float) -> None:
    rel = windows / windows[0]
    within = 100 * np.mean(np.abs(rel - np.median(rel)) / np.median(rel) <= 0.10)
    print(f"{what}, 1 thread: {len(windows)} windows of {window_s:g} s; median per window relative to the "
          f"first: {' '.join(f'{r:.2f}' for r in rel)}")
    print(f"  range {rel.min():.2f}-{rel.max():.2f}x, std {100 * np.std(rel):.1f}%; {within:.0f}% of windows "
          f"within 10% of the median window")


if __name__ == "__main__":
    main()
