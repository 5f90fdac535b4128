"""``cifar10`` / ``cifar100``: torchvision's CIFAR, downloaded into ``data.root`` when the network
allows (train and test pooled and re-split, as before the registry)."""
from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
from torch.utils.data import ConcatDataset
from torchvision import datasets

from evaluators.datasets.record import DatasetSpec, Source
from search_spaces.errors import ConfigError

_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}


def _how_to_get(name: str) -> str:
    return f"put the extracted '{_FOLDERS[name]}' folder there (data.root=DIR)"


def _load(name: str, root: str | None, download: bool) -> Source:
    cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    root = root or "data"  # data.root= (empty) meant the default before the registry too
    try:
        parts = [cls(root, train=True, download=download), cls(root, train=False, download=download)]
    except (OSError, RuntimeError) as exc:
        tried = f"could not be downloaded ({type(exc).__name__})" if download else "data.download=false"
        raise ConfigError(
            f"data.root: {name} is not in {Path(root).resolve()} and {tried}; {_how_to_get(name)}"
        ) from None
    targets = np.concatenate([np.asarray(p.targets) for p in parts])
    return Source(
        targets=targets, num_classes=len(parts[0].classes),
        images=lambda: np.concatenate([p.data for p in parts]).transpose(0, 3, 1, 2),
        base=ConcatDataset(parts),
    )


DATASETS = tuple(
    DatasetSpec(
        name=name, description=f"torchvision's CIFAR-{classes} (32x32 colour), downloaded when the network allows",
        load=partial(_load, name), shape=(3, 32, 32), num_classes=classes, images=60_000,
        options={"root": "data", "download": True}, how_to_get=_how_to_get(name),
    )
    for name, classes in (("cifar10", 10), ("cifar100", 100))
)
