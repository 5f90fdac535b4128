"""Datasets for proxy training: seeded train/val/test splits held as tensors.

``digits`` (the offline default) is scikit-learn's bundled set of 1,797 real 8x8 handwritten
digits. ``cifar10`` / ``cifar100`` come from torchvision (downloaded when the network allows) and
``imagefolder`` reads any folder-per-class tree. Images are resized per evaluation resolution with
torchvision's transforms and cached, so each architecture trains at its own resolution.
"""
from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torchvision.transforms.v2 import functional as TF

from search_spaces.errors import ConfigError, describe_choices, unknown

DATASETS = ("digits", "cifar10", "cifar100", "imagefolder")


@dataclass
class Splits:
    """Normalised float tensors (N, 3, H, W) and labels; the search sees train and val only."""

    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    num_classes: int
    name: str
    _resized: dict = field(default_factory=dict, repr=False)

    def at(self, split: str, resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A split resized to ``resolution`` (antialiased bilinear), computed once per size."""
        key = (split, resolution)
        if key not in self._resized:
            x, y = getattr(self, split)
            if x.shape[-1] != resolution or x.shape[-2] != resolution:
                x = TF.resize(x, [resolution, resolution], antialias=True)
            self._resized[key] = (x.contiguous(), y)
        return self._resized[key]


def _split(x: np.ndarray, y: np.ndarray, seed: int, val: float, test: float, name: str, classes: int) -> Splits:
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=test, random_state=seed, stratify=y)
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=val / (1 - test), random_state=seed, stratify=y_rest
    )
    mean = x_train.mean(axis=(0, 2, 3), keepdims=True)
    std = x_train.std(axis=(0, 2, 3), keepdims=True) + 1e-6

    def tensors(a: np.ndarray, b: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(((a - mean) / std).astype(np.float32)), torch.from_numpy(b.astype(np.int64))

    return Splits(tensors(x_train, y_train), tensors(x_val, y_val), tensors(x_test, y_test), classes, name)


def _digits() -> tuple[np.ndarray, np.ndarray, int]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images.astype(np.float32) / 16.0  # 0..16 grey levels
    return np.repeat(images[:, None], 3, axis=1), bunch.target, 10


def _cifar(name: str, root: str | None) -> tuple[np.ndarray, np.ndarray, int]:
    from torchvision import datasets

    cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    folder = "cifar-10-batches-py" if name == "cifar10" else "cifar-100-python"
    root = root or "data"
    try:
        train = cls(root, train=True, download=True)
        test = cls(root, train=False, download=True)
    except (OSError, RuntimeError) as exc:
        raise ConfigError(
            f"data.root: {name} is not in {Path(root).resolve()} and could not be downloaded "
            f"({type(exc).__name__}); put the extracted '{folder}' folder there (data.root=DIR)"
        ) from None
    x = np.concatenate([train.data, test.data]).transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    y = np.concatenate([np.array(train.targets), np.array(test.targets)])
    return x, y, len(train.classes)


def _imagefolder(root: str | None, size: int = 64) -> tuple[np.ndarray, np.ndarray, int]:
    from torchvision import datasets

    if not root or not Path(root).is_dir():
        raise ConfigError(f"data.root: imagefolder needs data.root=DIR with one folder per class, got {root!r}")
    base = Path(root)
    folders = [base / "train", base / "val"] if (base / "train").is_dir() else [base]
    images, labels, classes = [], [], None
    for folder in folders:
        try:
            ds = datasets.ImageFolder(str(folder))
        except (FileNotFoundError, OSError) as exc:
            raise ConfigError(f"data.root: {folder}: {' '.join(str(exc).split())}") from None
        if classes is not None and ds.classes != classes:
            raise ConfigError(f"data.root: {folder} has other classes than {folders[0]}")
        classes = ds.classes
        for path, label in ds.samples:
            img = TF.pil_to_tensor(ds.loader(path).convert("RGB"))
            images.append(TF.resize(img, [size, size], antialias=True).float().numpy() / 255.0)
            labels.append(label)
    if not images:
        raise ConfigError(f"data.root: no images found under {root}")
    return np.stack(images), np.array(labels), len(classes)


def _check_fraction(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 0.9:
        raise ConfigError(f"data.{name}: must be a number in (0, 0.9), got {value!r}")
    return float(value)


def load_dataset(
    name: str = "digits", root: str | None = None, seed: int = 0, val_fraction: float = 0.2,
    test_fraction: float = 0.2, limit: int | None = None,
) -> Splits:
    """Seeded, stratified train/val/test splits of a dataset, as tensors.

    ``limit`` keeps a stratified subset of that many images before splitting (proxy search on a
    slice of CIFAR); the split seed is the data's own, independent of the search seed.
    """
    val_fraction = _check_fraction("val_fraction", val_fraction)
    test_fraction = _check_fraction("test_fraction", test_fraction)
    if val_fraction + test_fraction >= 0.9:
        raise ConfigError("data.val_fraction + data.test_fraction: must leave at least 10% to train on")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 50):
        raise ConfigError(f"data.limit: must be an integer >= 50 images, got {limit!r}")
    if name == "digits":
        x, y, classes = _digits()
    elif name in ("cifar10", "cifar100"):
        x, y, classes = _cifar(name, root)
    elif name == "imagefolder":
        x, y, classes = _imagefolder(root)
    else:
        raise unknown("data", name, DATASETS)
    if limit is not None and limit < len(y):
        x, _, y, _ = train_test_split(x, y, train_size=limit, random_state=seed, stratify=y)
    return _split(x, y, seed, val_fraction, test_fraction, name, classes)


def dataset_from_options(options: Mapping[str, Any] | None) -> Splits:
    """``load_dataset`` from a run's data group (``{"name": "digits", "root": ...}``), with
    unknown keys reported by name."""
    options = dict(options or {})
    allowed = [p for p in inspect.signature(load_dataset).parameters]
    for key in options:
        if key not in allowed:
            raise ConfigError(describe_choices("data option", key, allowed))
    return load_dataset(**options)
