"""``runtime=torch``: the module run eagerly by torch, on the CPU or a CUDA device.

CPU runs are timed with ``perf_counter`` around each call; CUDA runs with events recorded around
each call, synchronised on the end event. The weights can move to new memory between rounds
(``placement="per-round"``, see measure.py).
"""
from __future__ import annotations

import time
from itertools import chain

import torch
from torch import nn

from evaluators.latency.runtimes.record import Runner, Runtime, Target, keep_weights
from evaluators.quantize import quantize_int8


def replace_weights(module: nn.Module) -> None:
    """Copy every parameter and buffer of ``module`` to newly allocated memory, in place."""
    with torch.inference_mode(False), torch.no_grad():
        for tensor in chain(module.parameters(), module.buffers()):
            tensor.data = tensor.data.clone(memory_format=torch.preserve_format)


def make_runner(module: nn.Module, x: torch.Tensor, target: Target) -> Runner:
    layout = torch.channels_last if target.channels_last and x.ndim == 4 else torch.contiguous_format
    if target.dtype == torch.qint8:
        # Calibrated on random images: the activation ranges set the scales, not the kernels timed.
        module = quantize_int8(module, [torch.randn_like(x) for _ in range(2)])
        module, x = module.to(memory_format=layout), x.to(memory_format=layout)
    else:
        module = module.to(device=target.device, dtype=target.dtype, memory_format=layout)
        x = x.to(device=target.device, dtype=target.dtype, memory_format=layout)
    move = (lambda: replace_weights(module)) if target.move_weights else keep_weights
    if target.device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

        def run_cuda() -> float:
            start.record()
            module(x)
            end.record()
            end.synchronize()
            return start.elapsed_time(end)

        return run_cuda, move

    def run_cpu() -> float:
        begin = time.perf_counter()
        module(x)
        return (time.perf_counter() - begin) * 1e3

    return run_cpu, move


RUNTIME = Runtime("torch", make_runner, version=lambda: torch.__version__, devices=("cpu", "cuda"))
