"""A plain stopwatch for networks, written apart from the project's latency code.

It imports nothing of ``evaluators`` (only the builder, to turn an architecture string into the
network the project builds), so a mistake in ``evaluators/latency`` cannot hide in both numbers:
each network is built ``builds`` times (each build's weights lie elsewhere in memory, which alone
moves a network's speed by several percent), put in eval mode and channels_last, run ``warmup``
times, then timed with ``time.perf_counter`` in ``rounds`` rounds of ``runs`` back-to-back calls,
all networks and builds interleaved round by round; a network's latency is the median of its
``builds x rounds x runs`` times.

Three ways to run a network, as a user would deploy it: ``eager`` (torch, float32), ``int8``
(torch's FX post-training quantization with the x86 backend, calibrated on random images) and
``onnxruntime`` (exported with ``torch.onnx.export``, one CPU session per network).
"""
from __future__ import annotations

import io
import statistics
import time
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.ao.quantization import get_default_qconfig_mapping
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

from search_spaces.arch import Architecture
from search_spaces.builder import build_model

ENGINES = ("eager", "int8", "onnxruntime")


def _eager(model: nn.Module, x: torch.Tensor) -> Callable[[], object]:
    model = model.to(memory_format=torch.channels_last)
    x = x.to(memory_format=torch.channels_last)

    def call() -> object:
        with torch.inference_mode():
            return model(x)

    return call


def _int8(model: nn.Module, x: torch.Tensor) -> Callable[[], object]:
    torch.backends.quantized.engine = "x86"
    prepared = prepare_fx(model, get_default_qconfig_mapping("x86"), (x,))
    with torch.inference_mode():
        for _ in range(2):
            prepared(torch.randn_like(x))
    return _eager(convert_fx(prepared), x)


def _onnxruntime(model: nn.Module, x: torch.Tensor, threads: int) -> Callable[[], object]:
    import onnxruntime as ort  # noqa: PLC0415 (an optional extra: only the onnxruntime engine needs it)

    buffer = io.BytesIO()
    torch.onnx.export(model, (x,), buffer, input_names=["x"], output_names=["y"], dynamo=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
    feed = {"x": x.numpy()}
    return lambda: session.run(None, feed)


def build(arch: str, num_classes: int, batch: int, engine: str, threads: int) -> Callable[[], object]:
    """One call of the network ``arch`` on a fixed random batch, ready to time."""
    parsed = Architecture.parse(arch)
    torch.manual_seed(0)
    model = build_model(parsed, num_classes).eval()
    x = torch.randn(batch, 3, parsed.resolution, parsed.resolution)
    if engine == "eager":
        return _eager(model, x)
    if engine == "int8":
        return _int8(model, x)
    if engine == "onnxruntime":
        return _onnxruntime(model, x, threads)
    raise ValueError(f"engine: {engine!r} is not one of {', '.join(ENGINES)}")


def _probe() -> Callable[[], float]:
    """Milliseconds of a fixed workload (two 256x256 float32 products, cache-resident): how fast the
    machine runs right now, independent of the networks timed."""
    g = torch.Generator().manual_seed(0)
    a, out = torch.randn(256, 256, generator=g), torch.empty(256, 256)

    def probe() -> float:
        begin = time.perf_counter()
        torch.mm(a, a, out=out)
        torch.mm(out, a, out=out)
        return (time.perf_counter() - begin) * 1e3

    return probe


def stopwatch(archs: Sequence[str], num_classes: int = 10, batch: int = 1, threads: int = 1,
              engine: str = "eager", warmup: int = 3, rounds: int = 10, runs: int = 3,
              builds: int = 1, untimed: int = 0, gate: float | None = None, retakes: int = 3) -> list[float]:
    """Median milliseconds of each network in ``archs`` (see the module's docstring); ``untimed``
    calls of a network open each of its rounds without being timed.

    ``gate``: a probe workload is timed right before each group of ``runs`` calls; a group whose
    probe took more than ``gate`` times the probe's median over the first sweep was taken while the
    machine ran slow, and is taken again after the sweep (at most ``retakes`` more sweeps; a group
    that never passes keeps its fastest-probed take). The median is then over groups taken at the
    machine's usual speed: slow stretches are left out, not scaled, so the unit stays a plain loop's.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        calls = [(i, build(a, num_classes, batch, engine, threads)) for _ in range(builds)
                 for i, a in enumerate(archs)]
        for _, call in calls:
            for _ in range(warmup):
                call()
        probe = _probe() if gate is not None else None

        def take(call: Callable[[], object]) -> tuple[float, list[float]]:
            speed = statistics.median(probe() for _ in range(3)) if probe is not None else 0.0
            for _ in range(untimed):
                call()
            times = []
            for _ in range(runs):
                begin = time.perf_counter()
                call()
                times.append((time.perf_counter() - begin) * 1e3)
            return speed, times

        # groups[(round, slot)] = (probe ms, times) of the take that stands
        groups = {(r, j): take(call) for r in range(rounds) for j, (_, call) in enumerate(calls)}
        if gate is not None:
            usual = statistics.median(speed for speed, _ in groups.values())
            for _ in range(retakes):
                slow = [key for key, (speed, _) in groups.items() if speed > gate * usual]
                if not slow:
                    break
                for r, j in slow:
                    again = take(calls[j][1])
                    if again[0] < groups[(r, j)][0]:
                        groups[(r, j)] = again
        times: list[list[float]] = [[] for _ in archs]
        for (_, j), (_, group) in groups.items():
            times[calls[j][0]].extend(group)
        return [statistics.median(t) for t in times]
    finally:
        torch.set_num_threads(before)
