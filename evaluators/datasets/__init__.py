"""Datasets: one record per dataset holds everything the rest of nas needs to know about it.

A dataset's record (`DatasetSpec`) gives its name (``data=<name>``), a description, how it loads
its training and official test images, the shape an image is held at, its number of classes,
its own options (``data.root``, ``data.download``) and their defaults, whether its official test
split is kept, how it may be stored, and where to get it when it is absent. ``evaluators.data``
reads the record to split, normalise and store the images, so adding a dataset is one module
whose ``DATASETS`` lists its records plus one line in `BUILTIN` below.
"""
from __future__ import annotations

import importlib

from evaluators.datasets.record import STORAGES, ArrayImages, DatasetSpec, Source
from search_spaces.errors import unknown

_DATASETS: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
    """Make ``spec`` available as ``data=<name>`` (its name must be new)."""
    if not spec.name or not spec.name.replace("_", "").isalnum() or not spec.name.islower():
        raise ValueError(f"dataset name {spec.name!r} must be lowercase letters, digits and '_'")
    if spec.name in _DATASETS:
        raise ValueError(f"dataset {spec.name!r} is registered already")
    bad = set(spec.storages) - set(STORAGES)
    if not spec.storages or bad:
        raise ValueError(f"dataset {spec.name!r}: storages {sorted(bad)}; allowed: {', '.join(STORAGES)}")
    _DATASETS[spec.name] = spec
    return spec


def dataset_names() -> tuple[str, ...]:
    """Every registered dataset, in registration order."""
    return tuple(_DATASETS)


def get_dataset(name: str) -> DatasetSpec:
    """The record of dataset ``name``; a one-line error naming the registered ones if none."""
    try:
        return _DATASETS[name]
    except (KeyError, TypeError):  # TypeError: an unhashable value from a config file
        raise unknown("data", name, dataset_names()) from None


# The built-in datasets: each module's ``DATASETS`` is registered, in this order (the listing order).
BUILTIN = (
    "evaluators.datasets.digits",
    "evaluators.datasets.cifar",
    "evaluators.datasets.imagefolder",
    "evaluators.datasets.fashion_mnist",
)
for _module in BUILTIN:
    for _spec in importlib.import_module(_module).DATASETS:
        register(_spec)

__all__ = ["BUILTIN", "ArrayImages", "DatasetSpec", "Source", "dataset_names", "get_dataset", "register"]
