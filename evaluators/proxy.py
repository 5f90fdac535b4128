"""Proxy evaluation: train each candidate briefly on real data and score it on a held-out split.

The ranking, not the absolute accuracy, is what a search needs from a proxy, so a candidate gets
a few epochs at a reduced resolution. The space's base resolution trains at ``resolution`` pixels
and every resolution multiplier keeps its ratio (with the default 24: EfficientNet-B0's 224 trains at 24,
the 1.15x member at 27), so resolution stays a searchable choice. Each architecture trains from
a seed derived from (seed, its canonical string): its score does not depend on when it is asked,
which keeps a resumed run identical to an uninterrupted one. A repeat trains the same network
from another seed (derived from the repeat number too): a second, independent draw.
"""
from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Mapping
from typing import Any

import torch

from evaluators.base import DEFAULT_DATA, QUANTIZE, EvaluationFailed, Evaluator, Reporter
from evaluators.data import dataset_from_options
from evaluators.devices import resolve_device
from evaluators.quantize import calibration_batches, check_engine, quantize_int8
from evaluators.threads import intra_op_threads
from evaluators.train_config import TrainConfig
from evaluators.training import evaluate, fit
from search_spaces.arch import Architecture
from search_spaces.builder import build_model
from search_spaces.checks import check_int
from search_spaces.cost import cost
from search_spaces.errors import ConfigError, unknown

log = logging.getLogger(__name__)

def arch_seed(seed: int, key: str, repeat: int = 0) -> int:
    """A 63-bit seed from the evaluator's seed, an architecture's canonical string and the repeat.

    Repeat 0 keeps the seed that evaluations had before repeats existed, so earlier runs'
    scores stay comparable; every other repeat hashes its own number in.
    """
    text = f"{seed}:{key}" if repeat == 0 else f"{seed}:{key}:repeat{repeat}"
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def require_architectures(space: Any, evaluator: str) -> int | None:
    """Refuse spaces whose members are not Architectures; the space's base resolution (or None)."""
    member = space.sample(random.Random(0))
    if not isinstance(member, Architecture):
        raise ConfigError(
            f"evaluator {evaluator} builds Architecture members; space {space.name} yields "
            f"{type(member).__name__} (give a callable evaluator for such a space)"
        )
    return getattr(space, "base_resolution", None)


def scaled_resolution(arch: Architecture, resolution: int | None, base: int | None) -> int:
    """``arch.resolution`` scaled so that the space's ``base`` becomes ``resolution`` pixels
    (``resolution=None``: the architecture's own)."""
    if resolution is None:
        return arch.resolution
    return max(8, round(arch.resolution * resolution / (base or arch.resolution)))


class ProxyEvaluator(Evaluator):
    """Train a few epochs on ``data`` (digits by default); report validation accuracy in %."""

    name = "proxy"
    noisy = True  # each repeat trains from its own seed
    trains = True  # seconds per candidate: a run measures latency beside it by default

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        epochs: int = 3,
        steps: int | None = None,
        batch_size: int = 64,
        optimizer: str = "adamw",
        lr: float = 0.004,
        weight_decay: float = 0.05,
        label_smoothing: float = 0.1,
        warmup_epochs: float = 0.5,
        bn_recalibration: int = 8,
        resolution: int | None = 24,
        threads: int | None = None,
        device: str = "auto",
        amp: bool = False,
        seed: int = 0,
        timeout_s: float | None = None,
        quantize: str = "none",
        calibration_batches: int = 4,
        reduce_range: bool = True,
    ) -> None:
        self.train = TrainConfig(
            epochs=epochs, steps=steps, batch_size=batch_size, optimizer=optimizer, lr=lr, weight_decay=weight_decay,
            label_smoothing=label_smoothing, warmup_epochs=warmup_epochs, amp=amp,
            bn_recalibration=bn_recalibration,
        )
        check_int("resolution", resolution, 8, allow_none=True)
        check_int("threads", threads, 1, allow_none=True)
        self.device = resolve_device(device)
        if timeout_s is not None and not timeout_s > 0:
            raise ConfigError(f"timeout_s: must be > 0 seconds or null, got {timeout_s!r}")
        if quantize not in QUANTIZE:
            raise unknown("quantize", quantize, QUANTIZE)
        check_int("calibration_batches", calibration_batches, 1)
        if not isinstance(reduce_range, bool):
            raise ConfigError(f"reduce_range: expected true or false, got {reduce_range!r}")
        self.quantize, self.calibration_batches, self.reduce_range = quantize, calibration_batches, reduce_range
        if quantize == "int8":
            check_engine()
        self.resolution = resolution
        self.threads = threads
        self.seed = seed
        self.timeout_s = timeout_s
        self.data = dataset_from_options(data or DEFAULT_DATA)
        self.num_classes = self.data.num_classes
        self.base_resolution: int | None = None  # set by check_space from the searched space

    def check_space(self, space: Any) -> None:
        """Refuse spaces whose members are not Architectures; learn the space's base resolution."""
        self.base_resolution = require_architectures(space, self.name)

    def train_resolution(self, arch: Architecture) -> int:
        """Pixels a candidate trains at: its resolution scaled like the space's base to ``resolution``."""
        return scaled_resolution(arch, self.resolution, self.base_resolution)

    def __call__(self, arch: Architecture | str, report: Reporter | None = None,
                 repeat: int = 0) -> dict[str, float]:
        if isinstance(arch, str):
            arch = Architecture.parse(arch)
        key = str(arch)
        pixels = self.train_resolution(arch)
        pin = self.device.type == "cuda"
        seed = arch_seed(self.seed, key, repeat)
        deadline = None if self.timeout_s is None else time.monotonic() + self.timeout_s
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with intra_op_threads(self.threads), torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            model = build_model(arch, self.num_classes)
            loader = self.data.loader("train", pixels, self.train.batch_size, seed, pin_memory=pin)
            val = self.data.batches("val", pixels, pin_memory=pin)
            try:
                result = fit(model, loader, val, self.train, self.device, report=report, deadline=deadline)
            except (torch.OutOfMemoryError, MemoryError) as exc:
                del model, loader, val
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                raise EvaluationFailed("oom", " ".join(str(exc).split())[:200]) from None
            int8 = self._int8(model, loader, val) if self.quantize == "int8" else {}
        c = cost(arch, self.num_classes)
        log.debug("%s: %.2f%% in %.1f s at %d px", key, result.accuracy, result.train_s, pixels)
        return {
            "accuracy": result.accuracy,
            "loss": result.loss,  # validation cross-entropy
            "train_loss": result.train_loss,
            "params": c.params,
            "macs": c.macs,
            "train_resolution": pixels,
            "epochs": result.epochs,
            "steps": result.steps,
            "train_s": result.train_s,
            **int8,
        }

    def _int8(self, model: torch.nn.Module, loader: Any, val: Any) -> dict[str, float]:
        """The trained model quantized to int8 (calibrated on training batches) and scored on the
        same validation images as the float model."""
        begin = time.perf_counter()
        quantized = quantize_int8(model, calibration_batches(loader, self.calibration_batches), self.reduce_range)
        accuracy, loss = evaluate(quantized, val, torch.device("cpu"))
        return {"accuracy_int8": accuracy, "loss_int8": loss, "quantize_s": time.perf_counter() - begin}
