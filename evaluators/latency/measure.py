"""Latency of a module on a device: eval mode, inference mode, warm-up, repeats, median and spread.

A latency is wall-clock milliseconds of one call as a stopwatch loop of back-to-back calls sees it
(``benchmarks/latency_stopwatch.py`` checks it against one written apart from this code). Runs
happen under a fixed intra-op thread count, through the settings' runtime
(``evaluators/latency/runtimes/``: eager torch on CPU or CUDA, or ONNX Runtime on the CPU).

Where a module's weights lie in memory changes its speed: the same network built twice, or its
weights merely copied to new memory, measures differently by more than the run-to-run noise of one
build (benchmarks/latency_repeatability.py). A deployed network gets whatever placement its process
gives it, so ``placement="per-round"`` (the default) copies every weight to new memory before each
round and the latency spans as many placements as rounds; ``"fixed"`` keeps the first.

In each round a module is called once untimed before its timed calls: the first call after other
modules ran (or the weights moved) finds cold caches, which a loop of back-to-back calls does not.

Optionally (``reference="block"`` or ``"matmul"``) each group of runs is scaled by a reference
workload timed right before it, relative to that reference's median over the same measurement, so
drift within a measurement evens out and the unit stays the stopwatch's (``reference.py``).

One latency is the median of a module's timed calls (``statistic="median"``), or the mean of
their faster half (``"lower-half"``).
"""
from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import nn

from evaluators.latency.fingerprint import (
    DTYPES,
    PLACEMENTS,
    REFERENCES,
    STATISTICS,
    UNIT,
    Fingerprint,
    cpu_model,
)
from evaluators.latency.reference import SpeedReference
from evaluators.latency.runtimes import RUNTIMES, Runner, Runtime, Target
from evaluators.threads import intra_op_threads
from search_spaces.arch import Architecture
from search_spaces.builder import build_model
from search_spaces.checks import check_int
from search_spaces.errors import ConfigError, unknown


@dataclass(frozen=True)
class Measurement:
    latency_ms: float  # the module's latency: the settings' statistic over its runs
    median_ms: float
    p25_ms: float
    p75_ms: float
    repeats: int

    @property
    def spread(self) -> float:
        """Interquartile range relative to the median."""
        return (self.p75_ms - self.p25_ms) / self.median_ms if self.median_ms > 0 else 0.0


def summarise(times_ms: Sequence[float], statistic: str = "median") -> Measurement:
    """Median, quartiles and the latency by ``statistic``: ``median``, or ``lower-half`` (the mean of
    the faster half of the runs, the middle one included when their number is odd)."""
    if statistic not in STATISTICS:
        raise unknown("statistic", statistic, STATISTICS)
    q = statistics.quantiles(times_ms, n=4, method="inclusive") if len(times_ms) > 1 else [times_ms[0]] * 3
    median = statistics.median(times_ms)
    latency = statistics.fmean(sorted(times_ms)[:(len(times_ms) + 1) // 2]) if statistic == "lower-half" else median
    return Measurement(latency, median, q[0], q[2], len(times_ms))


@dataclass(frozen=True)
class LatencySettings:
    """How to measure: the target (device, threads, batch, dtype, layout, runtime) and the protocol."""

    device: str = "cpu"  # "cpu", "cuda" or "cuda:N"
    threads: int = 1
    batch: int = 1
    dtype: str = "float32"
    channels_last: bool = True
    runtime: str = "torch"
    warmup: int = 3  # untimed runs of each module first
    repeats: int = 20  # timed runs per module; their median is the latency
    rounds: int = 20  # the runs are spread over this many interleaved rounds (one placement each)
    placement: str = "per-round"  # "per-round": weights copied to new memory before each round; "fixed"
    # "block"/"matmul": groups of runs taken while the machine was slower or faster than usual are
    # scaled to the measurement's own typical speed (reference.py); "none": raw times. Off by
    # default: on 2026-12-07 it did not bring nas closer to a stopwatch (docs/benchmarks.md).
    reference: str = "none"
    # one latency from the runs: "median" (what a stopwatch loop reports) or "lower-half" (the mean
    # of the faster half, which reads below a stopwatch's median)
    statistic: str = "median"

    def __post_init__(self) -> None:
        if not isinstance(self.device, str) or not (  # a number typed on the command line is no device
                self.device == "cpu" or self.device == "cuda" or re.fullmatch(r"cuda:\d+", self.device)):
            raise ConfigError(f"device: {self.device!r} is not one of cpu, cuda, cuda:N")
        for name, low in (("threads", 1), ("batch", 1), ("warmup", 0), ("repeats", 1), ("rounds", 1)):
            check_int(name, getattr(self, name), low)
        if self.dtype not in DTYPES:
            raise unknown("dtype", self.dtype, DTYPES)
        runtime = RUNTIMES[self.runtime]
        if self.placement not in PLACEMENTS:
            raise unknown("placement", self.placement, PLACEMENTS)
        if self.reference not in REFERENCES:
            raise unknown("reference", self.reference, REFERENCES)
        if self.statistic not in STATISTICS:
            raise unknown("statistic", self.statistic, STATISTICS)
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"device: {self.device} was asked for but torch sees no CUDA device")
        problem = runtime.problem(self.device, self.dtype)
        if problem:
            raise ConfigError(problem)

    @property
    def runtime_record(self) -> Runtime:
        return RUNTIMES[self.runtime]

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.device)

    def fingerprint(self) -> Fingerprint:
        cuda = self.device.startswith("cuda")
        return Fingerprint(
            device="cuda" if cuda else "cpu",
            hardware=torch.cuda.get_device_name(self.torch_device) if cuda else cpu_model(),
            threads=0 if cuda else self.threads,
            batch=self.batch,
            dtype=self.dtype,
            layout="channels_last" if self.channels_last else "contiguous",
            runtime=self.runtime,
            runtime_version=self.runtime_record.version(),
            placement="per-round" if self.moves_weights else "fixed",
            reference=self.reference if self.uses_reference else "none",
            statistic=self.statistic,
            unit=UNIT,
        )

    @property
    def moves_weights(self) -> bool:
        """Whether weights move between rounds (not where the runtime owns its copy, as ORT does)."""
        return self.placement == "per-round" and self.runtime_record.moves_weights

    @property
    def uses_reference(self) -> bool:
        """Whether times are scaled by the CPU reference (CUDA events time the GPU alone)."""
        return self.reference != "none" and not self.device.startswith("cuda")


SETTING_KEYS = tuple(f.name for f in fields(LatencySettings))


def setting_defaults(**overrides: Any) -> dict[str, Any]:
    """Every measurement setting with its default: the one source of the commands' ``latency`` keys."""
    defaults = {f.name: f.default for f in fields(LatencySettings)}
    unknown_keys = set(overrides) - set(defaults)
    if unknown_keys:
        raise TypeError(f"not a latency setting: {sorted(unknown_keys)}")
    return {**defaults, **overrides}


class Measurer:
    """Times modules and whole networks under one ``LatencySettings``.

    Several modules measured together are interleaved: each gets its warm-up, then ``rounds``
    rounds in which every module runs ``repeats / rounds`` times in turn. On a shared machine the
    speed drifts within a second; spreading a module's runs over the whole measurement and taking
    their median averages that drift out instead of catching one slow moment.
    """

    def __init__(self, settings: LatencySettings | None = None) -> None:
        self.settings = settings or LatencySettings()
        self.fingerprint = self.settings.fingerprint()

    def _runner(self, module: nn.Module, shape: tuple[int, ...]) -> Runner:
        """A function that runs ``module`` once on a fixed random input and returns milliseconds,
        and one that moves its weights to new memory."""
        s = self.settings
        target = Target(s.torch_device, s.threads, DTYPES[s.dtype], s.channels_last, s.moves_weights)
        return s.runtime_record.make_runner(module.eval(), torch.randn(s.batch, *shape), target)

    def measure_many(self, items: Sequence[tuple[nn.Module, tuple[int, ...]]]) -> list[Measurement]:
        """Latency of each ``(module, input shape without batch)``, measured interleaved."""
        s = self.settings
        per_round = -(-s.repeats // s.rounds)
        with intra_op_threads(s.threads), torch.inference_mode():
            runs = [self._runner(module, shape) for module, shape in items]
            for run, _ in runs:
                for _ in range(s.warmup):
                    run()
            # A new reference per measurement: its nominal is its own median (reference.py).
            reference = SpeedReference(s.reference) if s.uses_reference else None
            times: list[list[float]] = [[] for _ in runs]
            at: list[list[float]] = [[] for _ in runs]  # the reference's time when each group ran
            for round_ in range(s.rounds):
                for (run, move), timed, current in zip(runs, times, at):
                    if round_:
                        move()
                    if reference is not None:
                        current.append(reference.sample())
                    # Untimed: the first call after other modules ran (or the weights moved) finds
                    # cold caches; the timed calls that follow it run back to back, as a
                    # deployed network serving requests, and a stopwatch loop, see them.
                    run()
                    timed.extend(run() for _ in range(per_round))
            if reference is not None:
                nominal = reference.nominal
                times = [[t * nominal / current[i // per_round] for i, t in enumerate(timed)]
                         for timed, current in zip(times, at)]
        return [summarise(t, s.statistic) for t in times]

    def measure(self, module: nn.Module, shape: tuple[int, ...]) -> Measurement:
        """Latency of ``module`` on a random input of ``(batch, *shape)``."""
        return self.measure_many([(module, shape)])[0]

    def networks(self, archs: Sequence[Architecture | str], num_classes: int = 1000) -> list[Measurement]:
        """Latency of whole networks at their own resolutions, measured interleaved."""
        parsed = [Architecture.parse(a) if isinstance(a, str) else a for a in archs]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            items = [(build_model(a, num_classes), (3, a.resolution, a.resolution)) for a in parsed]
        return self.measure_many(items)

    def network(self, arch: Architecture | str, num_classes: int = 1000) -> Measurement:
        """Latency of the whole network ``arch`` at its own resolution."""
        return self.networks([arch], num_classes)[0]
