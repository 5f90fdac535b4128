"""Post-training static int8 quantization of a built network.

PyTorch's FX graph mode with the ``x86`` backend: per-channel int8 weights, uint8 activations whose
ranges are observed on a few calibration batches, batch norm folded into the convolutions, and the
converted model running oneDNN/FBGEMM int8 kernels. Operations without an int8 kernel (SiLU,
sigmoid gates) stay in float32 between a dequantize and a quantize, as they would when deployed.

Why this flow and not ONNX Runtime's ``quantize_static``: on this project's x86 CPUs the FX model
runs real int8 kernels and is faster than its float32 original, while ONNX Runtime's QDQ models of
MBConv networks ran no faster than its own float32 sessions (``benchmarks/int8.py --flows``;
numbers in docs/benchmarks.md).
"""
from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable

import torch
from torch import nn
from torch.ao.quantization import QConfig, QConfigMapping, get_default_qconfig_mapping
from torch.ao.quantization.observer import HistogramObserver, default_per_channel_weight_observer
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

from evaluators.base import EvaluationFailed
from search_spaces.errors import ConfigError

ENGINE = "x86"  # oneDNN + FBGEMM; the quantized engine torch picks by default on x86


def check_engine() -> None:
    """Refuse, in one line, a torch without the x86 int8 engine or with another engine chosen."""
    supported = torch.backends.quantized.supported_engines
    if ENGINE not in supported:
        raise ConfigError(f"quantize: int8 needs torch's {ENGINE} quantized engine; this torch has "
                          f"{', '.join(supported)}")
    if torch.backends.quantized.engine != ENGINE:
        raise ConfigError(f"quantize: torch.backends.quantized.engine is {torch.backends.quantized.engine!r}; "
                          f"int8 is measured with {ENGINE!r}")


def qconfig_mapping(reduce_range: bool = True) -> QConfigMapping:
    """PyTorch's ``x86`` mapping; ``reduce_range=False`` observes activations over all 8 bits.

    The default keeps 7 bits because FBGEMM's kernels on CPUs without VNNI can saturate their 16-bit
    sums with full-range activations; on a CPU with VNNI (``lscpu`` lists ``avx512_vnni`` or
    ``avx_vnni``) full range is safe and gives the activations twice the resolution.
    """
    mapping = get_default_qconfig_mapping(ENGINE)
    if not reduce_range:
        mapping.set_global(QConfig(activation=HistogramObserver.with_args(reduce_range=False),
                                   weight=default_per_channel_weight_observer))
    return mapping


def quantize_int8(model: nn.Module, calibration: Iterable[torch.Tensor], reduce_range: bool = True) -> nn.Module:
    """An int8 copy of ``model`` (float32, CPU), its activation ranges observed on ``calibration``.

    A network the FX tracer or the converter cannot handle raises ``EvaluationFailed("quantize")``,
    which a run records as a failed row with the reason.
    """
    check_engine()
    if not isinstance(calibration, list):
        calibration = list(calibration)
    if not calibration:
        raise ConfigError("quantize: calibration needs at least one batch of images")
    try:
        # a latency runner is built inside inference_mode; preparing and converting copy modules
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            # clones made outside inference mode: a latency runner hands in inference tensors
            batches = [batch.detach().to("cpu", torch.float32).clone() for batch in calibration]
            float_model = _plain_copy(model)
            # torch.ao.quantization announces its move to torchao and its observers' future
            # arguments on every call: nothing a user of nas can act on
            for category in (DeprecationWarning, FutureWarning, UserWarning):
                warnings.simplefilter("ignore", category)
            prepared = prepare_fx(float_model, qconfig_mapping(reduce_range), (batches[0],))
            with torch.inference_mode():
                for batch in batches:
                    prepared(batch)
            quantized = convert_fx(prepared)
            with torch.inference_mode():
                quantized(batches[0][:1])  # a kernel without int8 support fails here, not later
    except (RuntimeError, TypeError, NotImplementedError, AssertionError, AttributeError,
            torch.fx.proxy.TraceError) as exc:
        raise EvaluationFailed("quantize", " ".join(f"{type(exc).__name__}: {exc}".split())[:200]) from None
    return quantized


def _plain_copy(model: nn.Module) -> nn.Module:
    """A float32 CPU copy of ``model`` in eval mode whose tensors are ordinary (not inference) ones."""
    copied = copy.deepcopy(model).to("cpu", torch.float32).eval()
    for tensor in [*copied.parameters(), *copied.buffers()]:
        if tensor.is_inference():
            tensor.data = tensor.data.clone()
    return copied


def calibration_batches(loader: Iterable[tuple[torch.Tensor, torch.Tensor]], n: int) -> list[torch.Tensor]:
    """The images of the first ``n`` batches of ``loader`` (a training loader: the data a deployment
    would calibrate on)."""
    images = []
    for batch, _ in loader:
        images.append(batch)
        if len(images) >= n:
            break
    return images
