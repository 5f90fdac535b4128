"""A latency runtime's record: what it measures on and how it runs a module (see the package)."""
from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from evaluators.latency.fingerprint import DTYPES

Runner = tuple[Callable[[], float], Callable[[], None]]  # (run once -> ms, move the weights)


@dataclass(frozen=True)
class Target:
    """What a runner times on: the device, intra-op threads, dtype, memory layout, and whether the
    weights move to new memory between rounds."""

    device: torch.device
    threads: int
    dtype: torch.dtype
    channels_last: bool
    move_weights: bool


@dataclass(frozen=True)
class Runtime:
    name: str
    make_runner: Callable[[nn.Module, torch.Tensor, Target], Runner]  # (module in eval mode, input, target)
    version: Callable[[], str]
    devices: tuple[str, ...] = ("cpu",)  # device types: "cpu", "cuda"
    dtypes: tuple[str, ...] = tuple(DTYPES)
    moves_weights: bool = True  # False: it owns a copy of the weights (placement is then "fixed")
    requires: tuple[str, ...] = ()  # modules it imports, checked before anything is measured
    install: str = ""  # how a user gets them

    def problem(self, device: str, dtype: str) -> str | None:
        """Why this runtime cannot measure on ``device`` in ``dtype`` (one line), or None."""
        kind = device.split(":", 1)[0]
        if kind not in self.devices:
            return f"runtime: {self.name} is measured on {' or '.join(self.devices)}; use device={self.devices[0]}"
        if dtype not in self.dtypes:
            return f"dtype: {self.name} profiles are {' or '.join(self.dtypes)}"
        if dtype == "int8" and kind != "cpu":
            return "dtype: int8 is measured on the CPU (torch's x86 int8 kernels); use device=cpu"
        missing = [m for m in self.requires if importlib.util.find_spec(m) is None]
        if missing:
            return f"runtime: {self.name} needs {' and '.join(missing)} installed ({self.install})"
        return None


def keep_weights() -> None:
    """The weight move of a runner whose weights stay where they are."""
