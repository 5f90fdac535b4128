"""A dataset's record and what its loader returns (see the package)."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

STORAGES = ("memory", "stream")


@dataclass(frozen=True, eq=False)
class Source:
    """A dataset as its loader found it: every image by position, training images first.

    ``images`` gives all of them as one array when the loader holds them (digits, CIFAR, Fashion-
    MNIST); an ImageFolder has none, and the images the splits use are decoded from ``base``.
    ``base`` serves one image at a time (a PIL image or a CHW tensor) to streamed storage.
    """

    targets: np.ndarray  # the label of every image
    num_classes: int
    images: Callable[[], np.ndarray] | None = None  # (N, C, H, W), called only for memory storage
    scale: float = 255.0  # what ``images`` divides by to lie in [0, 1] (1: already float)
    base: Dataset | None = None  # None: the dataset cannot be streamed
    test_from: int | None = None  # images from here on are the dataset's own test split


@dataclass(frozen=True)
class DatasetSpec:
    """Everything nas knows about one dataset (see ``evaluators.datasets``)."""

    name: str  # data=<name>
    description: str  # one line: what it is and where it comes from
    # (**options) -> Source; the options are ``options``' keys, defaults filled in, values checked
    load: Callable[..., Source]
    shape: tuple[int, int, int]  # (channels, height, width) of an image as held in memory
    num_classes: int | None  # None: read from the data (an ImageFolder has as many as folders)
    images: int | None  # how many images it has (train and test), None: depends on the files
    # the dataset's own test split is the test split and the search splits only its training
    # images; False: train and test are pooled and re-split by data.val_fraction/test_fraction
    official_test: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)  # its own options (root, download), defaults
    storages: tuple[str, ...] = STORAGES  # how it may be held: digits is memory only
    how_to_get: str = ""  # where to get it when it is absent, for the one-line error

    @property
    def summary(self) -> str:
        """'70,000 images of 28x28' (or '28x28 images' where the count depends on the files)."""
        side = f"{self.shape[1]}x{self.shape[2]}"
        return f"{self.images:,} images of {side}" if self.images else f"{side} images"


class ArrayImages(Dataset):
    """Images held as one uint8 array (N, H, W) or (N, C, H, W), served as CHW tensors so the
    streamed path's torchvision transforms (RGB, resize) read them like decoded files."""

    def __init__(self, images: np.ndarray, targets: np.ndarray) -> None:
        self.images = torch.from_numpy(images if images.ndim == 4 else images[:, None])
        self.targets = targets

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i], int(self.targets[i])
