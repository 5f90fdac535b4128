"""A fixed reference workload timed beside a measurement, to even out the machine's drift within it.

On a shared or frequency-scaled CPU the whole machine speeds up and slows down over seconds
(benchmarks/machine_drift.py). A small workload timed right before each of a module's groups of
runs moves the same way, so a group taken while the machine was slow can be scaled back to the
measurement's typical speed: ``time * nominal / current``.

The nominal is the median of the reference's own timings in the same measurement, taken at the same
points (between rounds, after other modules ran and weights moved). So the factors spread around 1
and scaling never changes the unit: a latency stays in the milliseconds a stopwatch sees. (Until
2026-12-07 the nominal was timed in a tight loop of 400 back-to-back runs, where the reference stays
in cache; between rounds it runs cold and slower, so every latency came out about 0.7x a stopwatch's:
``benchmarks/latency_units.py`` measures both.)

Two workloads: ``block``, a fixed inverted-residual block (1x1 expand, depthwise 3x3, 1x1 project:
the operators CNNs spend their time in), and ``matmul``, two 256x256 matrix products.
"""
from __future__ import annotations

import statistics
import time
from collections import deque
from collections.abc import Callable

import torch
from torch import nn

SIZE = 256  # a 256x256 float32 product: cache-resident, no allocation churn
WINDOW = 5  # a group is scaled by the median of the last few reference timings: one slow run is not a slow machine
# The machine drifts over seconds, not milliseconds: within this many seconds of the last reference
# timing the factor stands, so thousands of sub-millisecond parts do not each pay for a reference.
REFRESH_S = 0.1


class SpeedReference:
    """Times the reference workload between groups of runs; ``current`` is the running median of its
    last ``WINDOW`` timings and ``nominal`` the median of all of them."""

    def __init__(self, workload: str = "block") -> None:
        self.run = reference_workload(workload)
        self.recent: deque[float] = deque(maxlen=WINDOW)
        self.timings: list[float] = []
        self._timed_at = -float("inf")

    def time_once(self) -> float:
        """Milliseconds of one reference run, remembered."""
        begin = time.perf_counter()
        self.run()
        self._timed_at = time.perf_counter()
        ms = (self._timed_at - begin) * 1e3
        self.recent.append(ms)
        self.timings.append(ms)
        return ms

    @property
    def current(self) -> float:
        return statistics.median(self.recent)

    @property
    def nominal(self) -> float:
        """The typical reference time of this measurement: what the factors are relative to."""
        return statistics.median(self.timings)

    def sample(self) -> float:
        """The reference's current time, timed again when its last timing is older than ``REFRESH_S``."""
        if time.perf_counter() - self._timed_at >= REFRESH_S or not self.recent:
            self.time_once()
        return self.current


def reference_workload(name: str) -> Callable[[], object]:
    """The reference workload ``name`` (``block`` or ``matmul``), built once with fixed values."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        if name == "matmul":
            x, out = torch.randn(SIZE, SIZE), torch.empty(SIZE, SIZE)
            return lambda: (torch.mm(x, x, out=out), torch.mm(out, x, out=out))
        if name != "block":
            raise ValueError(f"unknown reference workload {name!r}")
        block = nn.Sequential(
            nn.Conv2d(40, 240, 1, bias=False), nn.BatchNorm2d(240), nn.SiLU(),
            nn.Conv2d(240, 240, 3, padding=1, groups=240, bias=False), nn.BatchNorm2d(240), nn.SiLU(),
            nn.Conv2d(240, 40, 1, bias=False), nn.BatchNorm2d(40),
        ).eval().to(memory_format=torch.channels_last)
        x = torch.randn(1, 40, 28, 28).to(memory_format=torch.channels_last)

    def run() -> object:
        with torch.inference_mode():
            return block(x)

    return run
