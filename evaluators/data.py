"""Datasets for proxy training: seeded train/val/test splits, in memory or streamed.

Each dataset is a record in ``evaluators.datasets`` (how it loads, its shape, classes, options and
where to get it): ``digits`` (the offline default) is scikit-learn's bundled set of 1,797 real 8x8
handwritten digits, ``cifar10`` / ``cifar100`` come from torchvision (downloaded when the network
allows), ``imagefolder`` reads any folder-per-class tree and ``fashion_mnist`` reads Debian's
``dataset-fashion-mnist`` or torchvision's files, keeping its official test split. This module
splits, normalises and stores what a record loads. A dataset that fits in ``memory_limit_gb`` is
held as tensors, resized per evaluation resolution with torchvision's transforms and cached, so
each architecture trains at its own resolution without decoding an image again; a larger one is
streamed: DataLoader workers decode and resize each batch (``evaluators.streamed``).
"""
from __future__ import annotations

import inspect
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    RandomSampler,
    TensorDataset,
)
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from evaluators.base import DEFAULT_DATA
from evaluators.datasets import DATASETS, DatasetSpec
from evaluators.datasets.imagefolder import IMAGEFOLDER_PIXELS  # noqa: F401 (its old home)
from evaluators.streamed import ImageSubset, StreamedSplits
from search_spaces.checks import check_int
from search_spaces.errors import ConfigError, describe_choices, unknown

STORAGES = ("auto", "memory", "stream")
TEST_FRACTION = 0.2  # data.test_fraction's default, for datasets whose train and test are pooled


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
    labels: np.ndarray, seed: int, val: float, test: float | None, limit: int | None = None,
    test_from: int | None = None,
) -> dict[str, np.ndarray]:
    """Seeded, stratified train/val/test positions into ``labels`` (after an optional stratified
    ``limit``); the same for a dataset held in memory and one streamed.

    With ``test_from`` the positions from there on are the test split, whole and in order (a
    dataset's own test split), and train and val come only from the positions before it: ``limit``
    and ``val`` then count training images and ``test`` is not used.
    """
    if test_from is not None:
        pool, pool_labels = np.arange(test_from), labels[:test_from]
        if limit is not None and limit < test_from:
            pool, _, pool_labels, _ = train_test_split(
                pool, pool_labels, train_size=limit, random_state=seed, stratify=pool_labels)
        train_index, val_index = train_test_split(pool, test_size=val, random_state=seed, stratify=pool_labels)
        return {"train": train_index, "val": val_index, "test": np.arange(test_from, len(labels))}
    test = TEST_FRACTION if test is None else test
    index = np.arange(len(labels))
    if limit is not None and limit < len(labels):
        index, _, labels, _ = train_test_split(index, labels, train_size=limit, random_state=seed, stratify=labels)
    rest, test_index, rest_labels, _ = train_test_split(
        index, labels, test_size=test, random_state=seed, stratify=labels)
    train_index, val_index = train_test_split(
        rest, test_size=val / (1 - test), random_state=seed, stratify=rest_labels)
    return {"train": train_index, "val": val_index, "test": test_index}


def _in_memory(x: np.ndarray, y: np.ndarray, indices: dict[str, np.ndarray], scale: float, name: str,
               classes: int, channels: int = 3) -> Splits:
    """Tensors of each split, normalised by the training split's channel mean and std; a grey
    source is repeated to ``channels`` after normalising (the stems take RGB, as for digits)."""
    parts = {}
    for split, index in indices.items():
        images = x[index].astype(np.float32)
        if scale != 1:
            images /= scale
        parts[split] = (images, y[index])
    mean = parts["train"][0].mean(axis=(0, 2, 3), keepdims=True)
    std = parts["train"][0].std(axis=(0, 2, 3), keepdims=True) + 1e-6

    def tensors(a: np.ndarray, b: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        a -= mean  # in place: ``a`` is this split's own copy (all of CIFAR-10's is 0.7 GB)
        a /= std
        images = torch.from_numpy(a)
        if images.shape[1] != channels:
            images = images.expand(-1, channels, -1, -1).contiguous()
        return images, torch.from_numpy(b.astype(np.int64))

    return Splits(*(tensors(*parts[s]) for s in ("train", "val", "test")), classes, name)


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


def _check_options(spec: DatasetSpec, val_fraction: float, test_fraction: float | None, limit: int | None,
                   storage: str, workers: int | None, memory_limit_gb: float) -> None:
    val_fraction = _check_fraction("val_fraction", val_fraction)
    if test_fraction is not None and spec.official_test:
        raise ConfigError(f"data.test_fraction: {spec.name} keeps its official test split; the search "
                          f"splits its training images by data.val_fraction (and data.limit)")
    if not spec.official_test:
        test_fraction = _check_fraction("test_fraction", TEST_FRACTION if test_fraction is None else test_fraction)
        if val_fraction + test_fraction >= 0.9:
            raise ConfigError("data.val_fraction + data.test_fraction: must leave at least 10% to train on")
    check_int("data.limit", limit, 50, allow_none=True)
    if storage not in STORAGES:
        raise unknown("data.storage", storage, STORAGES)
    if storage == "stream" and "stream" not in spec.storages:
        streamable = [n for n, s in DATASETS.items() if "stream" in s.storages]
        raise ConfigError(f"data.storage: {spec.name} ({spec.summary}) is always held in memory; "
                          f"stream is for {', '.join(streamable)}")
    check_int("data.workers", workers, 0, allow_none=True)
    if isinstance(memory_limit_gb, bool) or not isinstance(memory_limit_gb, (int, float)) or not memory_limit_gb > 0:
        raise ConfigError(f"data.memory_limit_gb: must be a number > 0, got {memory_limit_gb!r}")


def _dataset_options(spec: DatasetSpec, given: Mapping[str, Any]) -> dict[str, Any]:
    """The record's own options (root, download): its defaults, overridden by the values given."""
    options = dict(spec.options)
    for key, value in given.items():
        if value is None:
            continue
        if key in options:
            options[key] = value
        elif key != "root":  # data.root has always been accepted (and unused) by digits
            takers = [n for n, s in DATASETS.items() if key in s.options]
            raise ConfigError(f"data.{key}: {spec.name} has no {key} option; it is for {', '.join(takers)}")
    if "download" in options and not isinstance(options["download"], bool):
        raise ConfigError(f"data.download: must be true or false, got {options['download']!r}")
    return options


def load_dataset(
    name: str = DEFAULT_DATA["name"], root: str | None = None, seed: int = 0, val_fraction: float = 0.2,
    test_fraction: float | None = None, limit: int | None = None, storage: str = "auto",
    workers: int | None = None, memory_limit_gb: float = 2.0, download: bool | None = None,
) -> DataSplits:
    """Seeded, stratified train/val/test splits of dataset ``name`` (a record of
    ``evaluators.datasets``).

    ``limit`` keeps a stratified subset of that many images before splitting (proxy search on a
    slice of CIFAR); the split seed is the data's own, independent of the search seed. A dataset
    whose train and test are pooled is re-split by ``val_fraction`` and ``test_fraction`` (0.2
    each by default); one that keeps its official test split (``fashion_mnist``) takes ``limit``
    and ``val_fraction`` of its training images only and refuses ``test_fraction``. ``root`` and
    ``download`` default per dataset (its record's ``options``).
    ``storage=auto`` holds the splits in memory when their float tensors fit in
    ``memory_limit_gb`` and streams them through ``workers`` DataLoader processes otherwise.
    """
    spec = DATASETS[name]
    _check_options(spec, val_fraction, test_fraction, limit, storage, workers, memory_limit_gb)
    options = _dataset_options(spec, {"root": root, "download": download})
    # one worker per four cores: on 2 cores a worker fights the training threads for a core and
    # proxy training of small networks on decoded JPEGs then gets slower, not faster
    workers = min(8, (os.cpu_count() or 1) // 4) if workers is None else workers
    source = spec.load(**options)
    test_from = source.test_from if spec.official_test else None
    indices = split_indices(source.targets, seed, val_fraction, test_fraction, limit, test_from)
    count = sum(len(i) for i in indices.values())
    if storage == "auto":
        fits = count * math.prod(spec.shape) * 4 <= memory_limit_gb * 2**30
        storage = "memory" if fits or "stream" not in spec.storages else "stream"
    targets = source.targets
    if storage == "stream":
        streamed = StreamedSplits(source.base, targets, indices, source.num_classes, name, workers)
        streamed.estimate_normalisation(seed=seed)
        return streamed
    if source.images is None:  # decode only the images the splits use; re-point the splits at them
        order = ("train", "val", "test")
        used = np.concatenate([indices[s] for s in order])
        x, targets = _decode(source.base, used, spec.shape[-1], workers), targets[used]
        ends = np.cumsum([len(indices[s]) for s in order])
        indices = {s: np.arange(end - len(indices[s]), end) for s, end in zip(order, ends)}
    else:
        x = source.images()
    return _in_memory(x, targets, indices, source.scale, name, source.num_classes, spec.shape[0])


def dataset_from_options(options: Mapping[str, Any] | None) -> DataSplits:
    """``load_dataset`` from a run's data group (``{"name": "digits", "root": ...}``), with
    unknown keys reported by name."""
    options = dict(options or {})
    allowed = [p for p in inspect.signature(load_dataset).parameters]
    for key in options:
        if key not in allowed:
            raise ConfigError(describe_choices("data option", key, allowed))
    return load_dataset(**options)
