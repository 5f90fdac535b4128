"""Datasets for proxy training: seeded train/val/test splits, in memory or streamed.

``digits`` (the offline default) is scikit-learn's bundled set of 1,797 real 8x8 handwritten
digits. ``cifar10`` / ``cifar100`` come from torchvision (downloaded when the network allows) and
``imagefolder`` reads any folder-per-class tree. A dataset that fits in ``memory_limit_gb`` is
held as tensors, resized per evaluation resolution with torchvision's transforms and cached, so
each architecture trains at its own resolution without decoding an image again; a larger one is
streamed: DataLoader workers decode and resize each batch (``evaluators.streamed``).
"""
from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch.utils.data import (
    BatchSampler,
    ConcatDataset,
    DataLoader,
    Dataset,
    RandomSampler,
    TensorDataset,
)
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from evaluators.streamed import ImageSubset, StreamedSplits
from search_spaces.checks import check_int
from search_spaces.errors import ConfigError, describe_choices, unknown

DATASETS = ("digits", "cifar10", "cifar100", "imagefolder")
STORAGES = ("auto", "memory", "stream")
IMAGEFOLDER_PIXELS = 64  # side an ImageFolder image is stored at when held in memory


def tensor_loader(split: tuple[torch.Tensor, torch.Tensor], batch_size: int, seed: int) -> DataLoader:
    """Shuffled batches of in-memory tensors, each fetched by one indexing operation.

    A batch sampler with ``batch_size=None`` hands the dataset whole index lists, so a batch is
    one tensor gather instead of ``batch_size`` item lookups and a collate.
    """
    dataset = TensorDataset(*split)
    sampler = BatchSampler(
        RandomSampler(dataset, generator=torch.Generator().manual_seed(seed)), batch_size,
        drop_last=len(dataset) > batch_size,
    )
    return DataLoader(dataset, sampler=sampler, batch_size=None)


@dataclass
class Splits:
    """Normalised float tensors (N, 3, H, W) and labels; the search sees train and val only."""

    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    num_classes: int
    name: str
    _resized: dict = field(default_factory=dict, repr=False)

    storage = "memory"

    def at(self, split: str, resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A split resized to ``resolution`` (antialiased bilinear), computed once per size."""
        key = (split, resolution)
        if key not in self._resized:
            x, y = getattr(self, split)
            if x.shape[-1] != resolution or x.shape[-2] != resolution:
                x = TF.resize(x, [resolution, resolution], antialias=True)
            self._resized[key] = (x.contiguous(), y)
        return self._resized[key]

    def size(self, split: str) -> int:
        return len(getattr(self, split)[1])

    def labels(self, split: str) -> torch.Tensor:
        return getattr(self, split)[1]

    def loader(self, split: str, resolution: int, batch_size: int, seed: int,
               pin_memory: bool = False) -> DataLoader:
        """Shuffled batches (seeded order), the last partial batch dropped."""
        return tensor_loader(self.at(split, resolution), batch_size, seed)

    def batches(self, split: str, resolution: int, batch_size: int = 256,
                pin_memory: bool = False) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The split in order, for evaluation."""
        x, y = self.at(split, resolution)
        return list(zip(x.split(batch_size), y.split(batch_size)))

    def take(self, split: str, resolution: int, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The samples at positions ``index`` of a split, as one batch."""
        x, y = self.at(split, resolution)
        return x[index], y[index]


DataSplits = Splits | StreamedSplits


def split_indices(
    labels: np.ndarray, seed: int, val: float, test: float, limit: int | None = None
) -> dict[str, np.ndarray]:
    """Seeded, stratified train/val/test positions into ``labels`` (after an optional stratified
    ``limit``); the same for a dataset held in memory and one streamed."""
    index = np.arange(len(labels))
    if limit is not None and limit < len(labels):
        index, _, labels, _ = train_test_split(index, labels, train_size=limit, random_state=seed, stratify=labels)
    rest, test_index, rest_labels, _ = train_test_split(
        index, labels, test_size=test, random_state=seed, stratify=labels)
    train_index, val_index = train_test_split(
        rest, test_size=val / (1 - test), random_state=seed, stratify=rest_labels)
    return {"train": train_index, "val": val_index, "test": test_index}


def _in_memory(x: np.ndarray, y: np.ndarray, indices: dict[str, np.ndarray], scale: float, name: str,
               classes: int) -> Splits:
    """Tensors of each split, normalised by the training split's channel mean and std."""
    parts = {}
    for split, index in indices.items():
        images = x[index].astype(np.float32)
        if scale != 1:
            images /= scale
        parts[split] = (images, y[index])
    mean = parts["train"][0].mean(axis=(0, 2, 3), keepdims=True)
    std = parts["train"][0].std(axis=(0, 2, 3), keepdims=True) + 1e-6

    def tensors(a: np.ndarray, b: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(((a - mean) / std).astype(np.float32)), torch.from_numpy(b.astype(np.int64))

    return Splits(*(tensors(*parts[s]) for s in ("train", "val", "test")), classes, name)


def _digits() -> tuple[np.ndarray, np.ndarray, int]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images.astype(np.float32) / 16.0  # 0..16 grey levels
    return np.repeat(images[:, None], 3, axis=1), bunch.target, 10


def _cifar(name: str, root: str | None) -> tuple[list[Any], int]:
    from torchvision import datasets

    cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    folder = "cifar-10-batches-py" if name == "cifar10" else "cifar-100-python"
    root = root or "data"
    try:
        parts = [cls(root, train=True, download=True), cls(root, train=False, download=True)]
    except (OSError, RuntimeError) as exc:
        raise ConfigError(
            f"data.root: {name} is not in {Path(root).resolve()} and could not be downloaded "
            f"({type(exc).__name__}); put the extracted '{folder}' folder there (data.root=DIR)"
        ) from None
    return parts, len(parts[0].classes)


def _imagefolder(root: str | None) -> tuple[list[Any], int]:
    from torchvision import datasets

    if not root or not Path(root).is_dir():
        raise ConfigError(f"data.root: imagefolder needs data.root=DIR with one folder per class, got {root!r}")
    base = Path(root)
    folders = [base / "train", base / "val"] if (base / "train").is_dir() else [base]
    parts: list[Any] = []
    for folder in folders:
        try:
            part = datasets.ImageFolder(str(folder))
        except (FileNotFoundError, OSError) as exc:
            raise ConfigError(f"data.root: {folder}: {' '.join(str(exc).split())}") from None
        if parts and part.classes != parts[0].classes:
            raise ConfigError(f"data.root: {folder} has other classes than {folders[0]}")
        parts.append(part)
    if not sum(len(p) for p in parts):
        raise ConfigError(f"data.root: no images found under {root}")
    return parts, len(parts[0].classes)


def _decode(base: Dataset, index: np.ndarray, pixels: int, workers: int) -> np.ndarray:
    """Images ``index`` of ``base`` as uint8 (N, 3, pixels, pixels), decoded by loader workers."""
    resize = v2.Compose([v2.ToImage(), v2.RGB(), v2.Resize((pixels, pixels), antialias=True)])
    loader = DataLoader(ImageSubset(base, index, resize), batch_size=256, num_workers=workers)
    out = np.empty((len(index), 3, pixels, pixels), dtype=np.uint8)
    start = 0
    for images, _ in loader:
        out[start:start + len(images)] = images.numpy()
        start += len(images)
    return out


def _check_fraction(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 0.9:
        raise ConfigError(f"data.{name}: must be a number in (0, 0.9), got {value!r}")
    return float(value)


def _check_options(val_fraction: float, test_fraction: float, limit: int | None, storage: str,
                   workers: int | None, memory_limit_gb: float) -> None:
    val_fraction = _check_fraction("val_fraction", val_fraction)
    test_fraction = _check_fraction("test_fraction", test_fraction)
    if val_fraction + test_fraction >= 0.9:
        raise ConfigError("data.val_fraction + data.test_fraction: must leave at least 10% to train on")
    check_int("data.limit", limit, 50, allow_none=True)
    if storage not in STORAGES:
        raise unknown("data.storage", storage, STORAGES)
    check_int("data.workers", workers, 0, allow_none=True)
    if isinstance(memory_limit_gb, bool) or not isinstance(memory_limit_gb, (int, float)) or not memory_limit_gb > 0:
        raise ConfigError(f"data.memory_limit_gb: must be a number > 0, got {memory_limit_gb!r}")


def load_dataset(
    name: str = "digits", root: str | None = None, seed: int = 0, val_fraction: float = 0.2,
    test_fraction: float = 0.2, limit: int | None = None, storage: str = "auto",
    workers: int | None = None, memory_limit_gb: float = 2.0,
) -> DataSplits:
    """Seeded, stratified train/val/test splits of a dataset.

    ``limit`` keeps a stratified subset of that many images before splitting (proxy search on a
    slice of CIFAR); the split seed is the data's own, independent of the search seed.
    ``storage=auto`` holds the splits in memory when their float tensors fit in
    ``memory_limit_gb`` and streams them through ``workers`` DataLoader processes otherwise.
    """
    _check_options(val_fraction, test_fraction, limit, storage, workers, memory_limit_gb)
    # one worker per four cores: on 2 cores a worker fights the training threads for a core
    # (3 MBConv proxies on 1,797 320-px JPEGs: 33 s with none, 46 s with one or two)
    workers = min(8, (os.cpu_count() or 1) // 4) if workers is None else workers
    if name == "digits":
        if storage == "stream":
            raise ConfigError("data.storage: digits (1,797 images of 8x8) is always held in memory; "
                              "stream is for cifar10, cifar100, imagefolder")
        x, y, classes = _digits()
        return _in_memory(x, y, split_indices(y, seed, val_fraction, test_fraction, limit), 1, name, classes)
    if name in ("cifar10", "cifar100"):
        parts, classes = _cifar(name, root)
        pixels = 32
    elif name == "imagefolder":
        parts, classes = _imagefolder(root)
        pixels = IMAGEFOLDER_PIXELS
    else:
        raise unknown("data", name, DATASETS)
    targets = np.concatenate([np.asarray(p.targets) for p in parts])
    indices = split_indices(targets, seed, val_fraction, test_fraction, limit)
    count = sum(len(i) for i in indices.values())
    if storage == "auto":
        storage = "memory" if count * 3 * pixels**2 * 4 <= memory_limit_gb * 2**30 else "stream"
    base = ConcatDataset(parts)
    if storage == "stream":
        streamed = StreamedSplits(base, targets, indices, classes, name, workers)
        streamed.estimate_normalisation(seed=seed)
        return streamed
    if name == "imagefolder":  # decode only the images the splits use; re-point the splits at them
        order = ("train", "val", "test")
        used = np.concatenate([indices[s] for s in order])
        x, targets = _decode(base, used, pixels, workers), targets[used]
        ends = np.cumsum([len(indices[s]) for s in order])
        indices = {s: np.arange(end - len(indices[s]), end) for s, end in zip(order, ends)}
    else:
        x = np.concatenate([p.data for p in parts]).transpose(0, 3, 1, 2)
    return _in_memory(x, targets, indices, 255.0, name, classes)


def dataset_from_options(options: Mapping[str, Any] | None) -> DataSplits:
    """``load_dataset`` from a run's data group (``{"name": "digits", "root": ...}``), with
    unknown keys reported by name."""
    options = dict(options or {})
    allowed = [p for p in inspect.signature(load_dataset).parameters]
    for key in options:
        if key not in allowed:
            raise ConfigError(describe_choices("data option", key, allowed))
    return load_dataset(**options)
