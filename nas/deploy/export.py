"""Deployable files of a ``model.pt``: TorchScript, ONNX, and an int8 TorchScript model.

``torchscript_int8`` is the float network quantized by ``evaluators.quantize`` (PyTorch FX graph
mode, x86 int8 kernels) with its activation ranges observed on a few training batches of the data
it was trained on, then traced; it is scored on that data's test split, so the int8 accuracy sits
beside the float one. There is no ONNX int8 export: ONNX Runtime's static QDQ models of MBConv
networks ran no faster than its own float32 sessions on the CPUs measured (docs/int8.md).
"""
from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from evaluators.base import EvaluationFailed
from evaluators.quantize import calibration_batches, quantize_int8
from evaluators.training import evaluate
from search_spaces.builder import build_model
from search_spaces.errors import ConfigError, NasError, unknown

if TYPE_CHECKING:
    from evaluators.data import DataSplits

log = logging.getLogger(__name__)

EXPORTS = ("torchscript", "onnx", "torchscript_int8")
FILES = {"torchscript": "model.torchscript.pt", "onnx": "model.onnx",
         "torchscript_int8": "model.int8.torchscript.pt"}
CALIBRATION_BATCHES = 4  # as the proxy's int8 scoring (evaluator.calibration_batches)
CALIBRATION_BATCH_SIZE = 64
CALIBRATION_SEED = 0  # the same training images calibrate every export of a model


@dataclass(frozen=True)
class Exported:
    """The files written (format -> path) and the int8 model's test top-1 % when one was written."""

    files: dict[str, str] = field(default_factory=dict)
    test_accuracy_int8: float | None = None


def load_model(path: str | Path) -> nn.Module:
    """The network in a ``model.pt``, in eval mode (read with ``weights_only=True``: plain data)."""
    return _build(_read(path))


def _read(path: str | Path) -> dict:
    return torch.load(Path(path), map_location="cpu", weights_only=True)


def _build(package: dict) -> nn.Module:
    model = build_model(package["arch"], package["num_classes"])
    model.load_state_dict(package["state_dict"])
    return model.eval()


def export_model(path: str | Path, formats: Sequence[str], data: DataSplits | None = None) -> Exported:
    """Write ``formats`` of the ``model.pt`` at ``path`` beside it; ``data`` (the data set it was
    trained on, at the package's resolution) calibrates and scores ``torchscript_int8``."""
    _check(formats)
    if not formats:
        return Exported()
    package = _read(path)
    return export_network(_build(package), int(package["resolution"]), formats, Path(path).parent, data)


def export_network(model: nn.Module, resolution: int, formats: Sequence[str], folder: str | Path,
                   data: DataSplits | None = None) -> Exported:
    """Write ``formats`` of a float ``model`` taking ``resolution``-pixel images into ``folder``."""
    _check(formats)
    folder = Path(folder)
    example = torch.zeros(1, 3, resolution, resolution)
    written, accuracy = {}, None
    with warnings.catch_warnings(), torch.no_grad():
        # both exporters are TorchScript based, which torch now marks deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        for name in (e for e in EXPORTS if e in formats):
            path = folder / FILES[name]
            if name == "torchscript":
                torch.jit.trace(model, example).save(str(path))
            elif name == "onnx":
                torch.onnx.export(model, (example,), str(path), input_names=["images"], output_names=["logits"],
                                  dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)
            else:
                accuracy = _int8(model, resolution, path, data)
            written[name] = str(path)
    return Exported(written, accuracy)


def _check(formats: Sequence[str]) -> None:
    bad = [e for e in formats if e not in EXPORTS]
    if bad:
        raise unknown("export", bad[0], EXPORTS)


def _int8(model: nn.Module, pixels: int, path: Path, data: DataSplits | None) -> float:
    """Quantize, trace and save ``model``; its test top-1 % as traced (what the file computes)."""
    if data is None:
        raise ConfigError("export torchscript_int8: needs the data the model was trained on, to calibrate "
                          "and score it")
    begin = time.perf_counter()
    loader = data.loader("train", pixels, CALIBRATION_BATCH_SIZE, CALIBRATION_SEED)
    try:
        quantized = quantize_int8(model, calibration_batches(loader, CALIBRATION_BATCHES))
    except EvaluationFailed as exc:  # in a run a failed row; here the user's one-line error
        raise NasError(f"export torchscript_int8: {exc}") from None
    with warnings.catch_warnings():
        # the tracer notes the quantize steps' scales and zero points becoming constants: they are
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(quantized, torch.zeros(1, 3, pixels, pixels))
    traced.save(str(path))
    accuracy, _ = evaluate(traced, data.batches("test", pixels), torch.device("cpu"))
    log.info("int8 export %s: test top-1 %.2f%% (%.1f s)", path, accuracy, time.perf_counter() - begin)
    return accuracy


__all__ = ["EXPORTS", "Exported", "export_model", "export_network", "load_model"]
