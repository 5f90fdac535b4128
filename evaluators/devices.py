"""The torch device a ``device=auto|cpu|cuda`` setting names: one check for every trainer.

Torch is imported only when a device is resolved, so checking a setting stays cheap.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from search_spaces.errors import ConfigError

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda")


def check_device(device: str) -> None:
    """A one-line ConfigError unless ``device`` is one of `DEVICES`."""
    if device not in DEVICES:
        raise ConfigError(f"device: {device!r} is not one of {', '.join(DEVICES)}")


def resolve_device(device: str | torch.device) -> torch.device:
    """``auto``: CUDA where torch sees it, else the CPU; ``cuda`` without CUDA is a one-line error."""
    import torch

    if isinstance(device, torch.device):  # already chosen (a Ray Train worker's GPU)
        return device
    check_device(device)
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: cuda was asked for but torch sees no CUDA device")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
