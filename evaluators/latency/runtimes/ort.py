"""``runtime=onnxruntime``: the module exported to ONNX and timed in an ONNX Runtime session on the CPU.

The session owns its copy of the weights, so they never move between rounds (placement "fixed").
"""
from __future__ import annotations

import io
import time
import warnings

import torch
from torch import nn

from evaluators.latency.runtimes.record import Runner, Runtime, Target, keep_weights


def _version() -> str:
    import onnxruntime  # noqa: PLC0415 - optional (the onnx extra): only for runtime=onnxruntime

    return onnxruntime.__version__


def make_runner(module: nn.Module, x: torch.Tensor, target: Target) -> Runner:
    import onnxruntime as ort  # noqa: PLC0415 - optional (the onnx extra)

    buffer = io.BytesIO()
    # The TorchScript exporter: a part exports in milliseconds, where torch.export takes
    # seconds, which a profile of thousands of parts cannot afford.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(module, (x,), buffer, input_names=["x"], dynamo=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads = target.threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
    feed = {"x": x.numpy()}

    def run() -> float:
        begin = time.perf_counter()
        session.run(None, feed)
        return (time.perf_counter() - begin) * 1e3

    return run, keep_weights


RUNTIME = Runtime("onnxruntime", make_runner, version=_version, devices=("cpu",), dtypes=("float32",),
                  moves_weights=False, requires=("onnx", "onnxruntime"), install="pip install 'nas[onnx]'")
