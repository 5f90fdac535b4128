"""Zero-cost proxies: score an untrained network from one batch, in well under a second.

- ``synflow`` (Tanaka et al. 2020; Abdelfattah et al. 2021): sum of |θ · ∂R/∂θ| where R is the
  output sum of the network with |θ| weights on an all-ones input (data-free), in float64;
- ``naswot`` (Mellor et al. 2021): log-determinant of the kernel of binary activation codes (which
  side of zero each activation's input is on) over a batch: how differently the network treats
  different images;
- ``grad_norm``: the sum of the weight gradients' L2 norms for the cross-entropy of one batch;
- ``snip`` (Lee et al. 2019): sum of |θ · ∂L/∂θ| for the cross-entropy of one batch;
- ``params`` / ``macs``: the cost model's counts (the baselines every proxy must beat).

Larger is better for every score. Weights are initialised from a seed derived from the
architecture, so a score is a pure function of (architecture, seed, batch).
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from evaluators.base import DEFAULT_DATA, EvaluationFailed, Evaluator, Reporter
from evaluators.data import dataset_from_options
from evaluators.proxy import arch_seed, require_architectures, scaled_resolution
from search_spaces.arch import Architecture
from search_spaces.builder import build_model
from search_spaces.checks import check_int
from search_spaces.cost import cost
from search_spaces.errors import unknown

PROXIES = ("synflow", "naswot", "grad_norm", "snip", "params", "macs")
INPUTS = ("data", "random")
_WEIGHTED = (nn.Conv2d, nn.Linear)
_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.SiLU, nn.Hardswish, nn.GELU)


def _weights(model: nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in model.modules() if isinstance(m, _WEIGHTED)]


def synflow(model: nn.Module, shape: tuple[int, ...]) -> float:
    model = model.double().eval()
    with torch.no_grad():
        for p in model.state_dict().values():
            if p.is_floating_point():
                p.abs_()
    model.zero_grad()
    model(torch.ones(1, *shape[1:], dtype=torch.float64)).sum().backward()
    with torch.no_grad():
        return float(sum((w * w.grad).abs().sum() for w in _weights(model) if w.grad is not None))


def naswot(model: nn.Module, images: torch.Tensor) -> float:
    codes: list[torch.Tensor] = []

    def record(_module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        codes.append((inputs[0].detach() > 0).flatten(1).double())

    handles = [m.register_forward_pre_hook(record) for m in model.modules() if isinstance(m, _ACTIVATIONS)]
    try:
        model.train()  # batch statistics, as the method's reference implementation
        with torch.no_grad():
            model(images)
    finally:
        for handle in handles:
            handle.remove()
    if not codes:
        raise EvaluationFailed("no_activations", "naswot needs activation layers")
    c = torch.cat(codes, dim=1)
    kernel = c @ c.T + (1 - c) @ (1 - c).T
    sign, logdet = torch.linalg.slogdet(kernel)
    return float(logdet) if sign > 0 else float("-inf")


def _loss_gradients(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> list[torch.Tensor]:
    model.train()
    model.zero_grad()
    nn.functional.cross_entropy(model(images), labels).backward()
    return _weights(model)


def grad_norm(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    weights = _loss_gradients(model, images, labels)
    with torch.no_grad():
        return float(sum(w.grad.norm() for w in weights if w.grad is not None))


def snip(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    weights = _loss_gradients(model, images, labels)
    with torch.no_grad():
        return float(sum((w * w.grad).abs().sum() for w in weights if w.grad is not None))


class ZeroCostEvaluator(Evaluator):
    """Score untrained networks with a zero-cost proxy; the metric is ``zero_cost``."""

    name = "zero_cost"
    default_objectives = ("zero_cost:max",)

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        proxy: str = "naswot",
        batch_size: int = 64,
        resolution: int | None = 32,
        inputs: str = "data",
        seed: int = 0,
    ) -> None:
        if proxy not in PROXIES:
            raise unknown("proxy", proxy, PROXIES)
        if inputs not in INPUTS:
            raise unknown("inputs", inputs, INPUTS)
        check_int("batch_size", batch_size, 2)
        check_int("resolution", resolution, 8, allow_none=True)
        self.proxy = proxy
        # A repeat scores another initialisation; params and MACs do not depend on one.
        self.noisy = proxy not in ("params", "macs")
        self.batch_size = batch_size
        self.resolution = resolution
        self.inputs = inputs
        self.seed = seed
        self.data = dataset_from_options(data or DEFAULT_DATA)
        self.num_classes = self.data.num_classes
        self.base_resolution: int | None = None

    def check_space(self, space: Any) -> None:
        self.base_resolution = require_architectures(space, self.name)

    def batch(self, pixels: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The scoring batch: a seeded draw of training images, or Gaussian noise."""
        generator = torch.Generator().manual_seed(seed)
        index = torch.randperm(self.data.size("train"), generator=generator)[: self.batch_size]
        if self.inputs == "random":
            return torch.randn(len(index), 3, pixels, pixels, generator=generator), self.data.labels("train")[index]
        return self.data.take("train", pixels, index)

    def __call__(self, arch: Architecture | str, report: Reporter | None = None,
                 repeat: int = 0) -> dict[str, float]:
        if isinstance(arch, str):
            arch = Architecture.parse(arch)
        c = cost(arch, self.num_classes)
        start = time.perf_counter()
        if self.proxy in ("params", "macs"):
            score = float(c.params if self.proxy == "params" else c.macs)
        else:
            pixels = scaled_resolution(arch, self.resolution, self.base_resolution)
            seed = arch_seed(self.seed, str(arch), repeat)  # a repeat: another initialisation
            images, labels = self.batch(pixels, self.seed)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = build_model(arch, self.num_classes)
                if self.proxy != "synflow":  # NHWC: oneDNN's fast path on CPU (see training.py)
                    model = model.to(memory_format=torch.channels_last)
                    images = images.contiguous(memory_format=torch.channels_last)
                if self.proxy == "synflow":
                    score = synflow(model, tuple(images.shape))
                elif self.proxy == "naswot":
                    score = naswot(model, images)
                elif self.proxy == "grad_norm":
                    score = grad_norm(model, images, labels)
                else:
                    score = snip(model, images, labels)
        return {"zero_cost": score, "params": c.params, "macs": c.macs,
                "score_s": time.perf_counter() - start}
