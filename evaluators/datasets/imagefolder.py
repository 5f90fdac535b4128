"""``imagefolder``: any folder-per-class tree under ``data.root`` (or its ``train/`` and ``val/``
folders of them, pooled and re-split), held at 64 px in memory."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import ConcatDataset
from torchvision import datasets

from evaluators.datasets.record import DatasetSpec, Source
from search_spaces.errors import ConfigError

IMAGEFOLDER_PIXELS = 64  # side an ImageFolder image is stored at when held in memory


def _load(root: str | None) -> Source:
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
    targets = np.concatenate([np.asarray(p.targets) for p in parts])
    # no ``images``: the files are decoded only for the positions the splits use
    return Source(targets=targets, num_classes=len(parts[0].classes), base=ConcatDataset(parts))


DATASETS = (
    DatasetSpec(
        name="imagefolder", description="one folder of images per class under data.root=DIR",
        load=_load, shape=(3, IMAGEFOLDER_PIXELS, IMAGEFOLDER_PIXELS), num_classes=None, images=None,
        options={"root": None}, how_to_get="data.root=DIR with one folder per class",
    ),
)
