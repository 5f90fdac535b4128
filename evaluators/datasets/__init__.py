"""Datasets: one record per dataset holds everything the rest of nas needs to know about it.

A dataset's record (`DatasetSpec`) gives its name (``data=<name>``), a description, how it loads
its training and official test images, the shape an image is held at, its number of classes,
its own options (``data.root``, ``data.download``) and their defaults, whether its official test
split is kept, how it may be stored, and where to get it when it is absent. ``evaluators.data``
reads the record to split, normalise and store the images, so adding a dataset is one module
whose ``DATASETS`` lists its records plus one line in `BUILTIN` below.
"""
from __future__ import annotations

from evaluators.datasets.record import STORAGES, ArrayImages, DatasetSpec, Source
from search_spaces.errors import RegistrationError
from search_spaces.registries import Options, Registry


def _check(name: str, spec: DatasetSpec) -> None:
    if not name.replace("_", "").isalnum() or not name.islower():
        raise RegistrationError(f"dataset name {name!r} must be lowercase letters, digits and '_'")
    bad = set(spec.storages) - set(STORAGES)
    if not spec.storages or bad:
        raise RegistrationError(f"dataset {name!r}: storages {sorted(bad)}; allowed: {', '.join(STORAGES)}")


# ``data=<name>``; a dataset's own options (data.root, data.download) are data in its record.
DATASETS: Registry[DatasetSpec] = Registry("dataset", field="data", check=_check, named=lambda spec: spec.name,
                                           options=lambda spec: Options.from_defaults(spec.options))
register = DATASETS.add  # register(spec): ``data=<spec.name>`` (a new name only)

# The built-in datasets: each module's ``DATASETS`` is registered, in this order (the listing order).
BUILTIN = (
    "evaluators.datasets.digits",
    "evaluators.datasets.cifar",
    "evaluators.datasets.imagefolder",
    "evaluators.datasets.fashion_mnist",
)
DATASETS.add_modules(BUILTIN, "DATASETS")

__all__ = ["BUILTIN", "DATASETS", "ArrayImages", "DatasetSpec", "Source", "register"]
