"""A fixed reference workload timed beside every measurement, to cancel the machine's speed drift.

On a shared or frequency-scaled CPU the whole machine speeds up and slows down by tens of percent
over seconds (benchmarks/machine_drift.py): the same network, built once and run back to back,
moves with it. A small matrix product timed right before each of a module's groups of runs moves
the same way, so ``time / reference * nominal`` keeps a module's latency at the speed the machine
had when the nominal reference was taken (a profile stores it, so all of a profile's measurements,
parts and whole networks, today's and tomorrow's, are in the same units).

Two workloads: ``block``, a fixed inverted-residual block (1x1 expand, depthwise 3x3, 1x1 project:
the operators CNNs spend their time in), and ``matmul``, two 256x256 matrix products. The machine
does not slow every operator alike: on a stretch where the matrix product's speed swung by several
times a network's, the block followed the networks and the product did not
(benchmarks/latency_repeatability.py compares them).
"""
from __future__ import annotations

import statistics
import time
from collections import deque
from collections.abc import Callable

import torch
from torch import nn

SIZE = 256  # a 256x256 float32 product: cache-resident, no allocation churn
WINDOW = 5  # the normaliser is the median of the last few reference timings: one slow run is not a slow machine
# The machine drifts over seconds, not milliseconds: within this many seconds of the last reference
# timing the factor stands, so thousands of sub-millisecond parts do not each pay for a reference.
REFRESH_S = 0.1


class SpeedReference:
    """Times the reference workload and keeps a running median of its last ``WINDOW`` timings."""

    def __init__(self, nominal_ms: float | None = None, workload: str = "block") -> None:
        self.run = reference_workload(workload)
        self.recent: deque[float] = deque(maxlen=WINDOW)
        self._nominal = nominal_ms
        self._timed_at = -float("inf")

    def time_once(self) -> float:
        """Milliseconds of one reference run, remembered in the running window."""
        begin = time.perf_counter()
        self.run()
        self._timed_at = time.perf_counter()
        ms = (self._timed_at - begin) * 1e3
        self.recent.append(ms)
        return ms

    @property
    def current(self) -> float:
        return statistics.median(self.recent)

    @property
    def nominal(self) -> float:
        """The reference's time that latencies are expressed at (measured once if not given)."""
        if self._nominal is None:
            for _ in range(20):
                self.time_once()
            self._nominal = statistics.median(self.time_once() for _ in range(400))
        return self._nominal

    def factor(self) -> float:
        """Multiply a time measured now by this to express it at nominal speed (the reference is
        timed again when its last timing is older than ``REFRESH_S``)."""
        if time.perf_counter() - self._timed_at >= REFRESH_S or not self.recent:
            self.time_once()
        return self.nominal / self.current


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
