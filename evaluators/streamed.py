"""Datasets too large to hold in memory: DataLoader workers decode and resize each batch.

The splits are index lists into a torchvision dataset (an ImageFolder, CIFAR); a sample goes
through torchvision's transforms at the resolution a candidate trains at, so a large image is
resized once, from its original size, straight to the pixels the network sees.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler
from torchvision.transforms import v2


class ImageSubset(Dataset):
    """The samples ``indices`` of ``base``, each image passed through ``transform``."""

    def __init__(self, base: Dataset, indices: np.ndarray, transform: Callable[[Any], Any]) -> None:
        self.base = base
        self.indices = indices
        self.transform = transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        image, label = self.base[int(self.indices[i])]
        return self.transform(image), label


def _to_float() -> v2.Compose:
    return v2.Compose([v2.ToImage(), v2.RGB(), v2.ToDtype(torch.float32, scale=True)])


def _channel_moments(image: Any) -> torch.Tensor:
    """Per-channel mean and mean square of one image in [0, 1], as a (2, 3) tensor."""
    x = _to_float()(image)
    return torch.stack([x.mean(dim=(1, 2)), x.square().mean(dim=(1, 2))])


@dataclass
class StreamedSplits:
    """Seeded train/val/test index splits of a dataset read through DataLoader workers."""

    base: Dataset
    targets: np.ndarray
    indices: dict[str, np.ndarray]
    num_classes: int
    name: str
    workers: int
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    _transforms: dict = field(default_factory=dict, repr=False)

    storage = "stream"

    def estimate_normalisation(self, samples: int = 512, seed: int = 0) -> None:
        """Channel mean and std of the training split, from a seeded sample of its images."""
        train = self.indices["train"]
        pick = np.random.default_rng(seed).permutation(len(train))[:samples]
        loader = DataLoader(ImageSubset(self.base, train[pick], _channel_moments), batch_size=64,
                            num_workers=self.workers)
        moments = torch.cat([m for m, _ in loader]).double().mean(dim=0)
        self.mean = tuple(moments[0].tolist())
        self.std = tuple((moments[1] - moments[0].square()).clamp_min(0).sqrt().add(1e-6).tolist())

    def size(self, split: str) -> int:
        return len(self.indices[split])

    def labels(self, split: str) -> torch.Tensor:
        return torch.from_numpy(self.targets[self.indices[split]].astype(np.int64))

    def transform(self, resolution: int) -> v2.Compose:
        """Decoded image -> normalised float tensor of ``resolution`` x ``resolution`` pixels."""
        if resolution not in self._transforms:
            self._transforms[resolution] = v2.Compose([
                v2.ToImage(), v2.RGB(), v2.Resize((resolution, resolution), antialias=True),
                v2.ToDtype(torch.float32, scale=True), v2.Normalize(self.mean, self.std),
            ])
        return self._transforms[resolution]

    def _subset(self, split: str, resolution: int) -> ImageSubset:
        return ImageSubset(self.base, self.indices[split], self.transform(resolution))

    def loader(self, split: str, resolution: int, batch_size: int, seed: int,
               pin_memory: bool = False) -> DataLoader:
        """Shuffled batches (seeded order), the last partial batch dropped; workers stay up
        across epochs."""
        subset = self._subset(split, resolution)
        # the loader's own generator seeds its workers: drawing from torch's global RNG instead
        # would shift dropout masks by how many epochs started iterators, unlike in memory
        return DataLoader(
            subset, batch_size=batch_size, drop_last=len(subset) > batch_size,
            sampler=RandomSampler(subset, generator=torch.Generator().manual_seed(seed)),
            generator=torch.Generator().manual_seed(seed + 1),
            num_workers=self.workers, persistent_workers=self.workers > 0, pin_memory=pin_memory,
        )

    def batches(self, split: str, resolution: int, batch_size: int = 256,
                pin_memory: bool = False) -> DataLoader:
        """The split in order, for evaluation."""
        return DataLoader(self._subset(split, resolution), batch_size=batch_size, generator=torch.Generator(),
                          num_workers=self.workers, persistent_workers=self.workers > 0, pin_memory=pin_memory)

    def take(self, split: str, resolution: int, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The samples at positions ``index`` of a split, as one batch."""
        subset = self._subset(split, resolution)
        images, labels = zip(*(subset[int(i)] for i in index))
        return torch.stack(images), torch.tensor(labels, dtype=torch.int64)
