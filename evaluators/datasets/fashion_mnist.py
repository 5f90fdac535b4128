"""``fashion_mnist``: Zalando's Fashion-MNIST, 60,000 training and 10,000 test 28x28 grey images
of 10 kinds of clothing; its official test split is the test split.

Where it is read from, first found first:

* ``data.root=DIR`` given: torchvision's layout (``DIR/FashionMNIST/raw/``, read by
  ``torchvision.datasets.FashionMNIST``), or a folder holding the four IDX files, gzipped or not
  (``data.root=/usr/share/datasets/fashion-mnist`` works too);
* no ``data.root``: Debian's package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``,
  four gzipped IDX files), then torchvision's layout under ``data`` (where a download goes);
* ``data.download=true``: torchvision downloads it into ``data.root`` (default ``data``).

The Debian files are read by a small numpy reader (`read_idx`), not torchvision: torchvision 0.29's
IDX reader opens ``FashionMNIST/raw/<name>`` with plain ``open()`` and looks only for the
decompressed names, so it cannot read the package's ``.gz`` files where they lie; going through it
would mean decompressing 55 MB into a cache first.
"""
from __future__ import annotations

import gzip
import logging
import math
import struct
import zlib
from pathlib import Path

import numpy as np
from torchvision import datasets

from evaluators.datasets.record import ArrayImages, DatasetSpec, Source
from search_spaces.errors import ConfigError

log = logging.getLogger(__name__)

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
DEFAULT_ROOT = "data"  # torchvision's root when data.root is not given (as for cifar10)
# (images, labels) IDX file names of each split: the names both torchvision and Debian use
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
SIDE = 28
HOW_TO_GET = ("apt-get install dataset-fashion-mnist, or let torchvision fetch it: "
              "data.root=DIR data.download=true")
Arrays = dict[str, tuple[np.ndarray, np.ndarray]]  # split -> (uint8 images (N, 28, 28), labels)


def read_idx(path: Path) -> np.ndarray:
    """An IDX file of unsigned bytes (gzipped when it ends in .gz) as an array of its shape."""
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise ConfigError(f"data.root: cannot read {path} ({' '.join(str(exc).split())})") from None
    # header: two zero bytes, the element type (0x08: unsigned byte), the number of dimensions,
    # then each dimension as a big-endian uint32
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 0x08 or data[3] not in (1, 3):
        raise ConfigError(f"data.root: {path} is not an IDX file of bytes (magic {data[:4].hex()})")
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != math.prod(dims):
        raise ConfigError(f"data.root: {path} holds {body.size} bytes for a {dims} array")
    return body.reshape(dims)


def _idx_files(folder: Path) -> dict[str, tuple[Path, Path]] | None:
    """The four IDX files in ``folder`` (each plain or .gz), or None if any is missing."""
    found = {}
    for split, names in FILES.items():
        paths = []
        for name in names:
            path = next((p for p in (folder / name, folder / f"{name}.gz") if p.is_file()), None)
            if path is None:
                return None
            paths.append(path)
        found[split] = (paths[0], paths[1])
    return found


def _torchvision(root: Path, download: bool) -> Arrays:
    """Both splits through ``torchvision.datasets.FashionMNIST`` (RuntimeError when absent)."""
    parts = {split: datasets.FashionMNIST(str(root), train=split == "train", download=download)
             for split in FILES}
    return {split: (p.data.numpy(), p.targets.numpy()) for split, p in parts.items()}


def _find(root: str | None) -> tuple[Arrays, str] | None:
    """The splits from the first place that has them, and where that was; None if none has."""
    places = [Path(root)] if root else [DEBIAN_DIR, Path(DEFAULT_ROOT)]
    for place in places:
        if _idx_files(place / "FashionMNIST" / "raw") is not None:
            try:  # torchvision reads its own layout (it wants the decompressed files)
                return _torchvision(place, download=False), str(place / "FashionMNIST" / "raw")
            except RuntimeError:
                pass  # only .gz files there: the reader below takes them
            except (AssertionError, TypeError, ValueError) as exc:  # torchvision's checks of a bad file
                raise ConfigError(f"data.root: {place / 'FashionMNIST' / 'raw'} holds a damaged "
                                  f"Fashion-MNIST file ({type(exc).__name__}: {exc})") from None
        for folder in (place, place / "FashionMNIST" / "raw"):
            files = _idx_files(folder)
            if files is not None:
                return {split: (read_idx(x), read_idx(y)) for split, (x, y) in files.items()}, str(folder)
    return None


def _check(arrays: Arrays, where: str) -> None:
    """The shapes and labels the record promises, so a wrong file fails here, in one line."""
    for split, (images, labels) in arrays.items():
        if images.ndim != 3 or images.shape[1:] != (SIDE, SIDE) or labels.shape != (len(images),):
            raise ConfigError(f"data.root: {where}: {split} images {images.shape} and labels {labels.shape} "
                              f"are not N 28x28 images with N labels")
        if len(labels) and not 0 <= labels.min() <= labels.max() <= 9:
            raise ConfigError(f"data.root: {where}: {split} labels outside 0..9")


def _load(root: str | None, download: bool) -> Source:
    found = _find(root)
    tried = ""
    if found is None and download:
        target = Path(root or DEFAULT_ROOT)
        try:
            found = _torchvision(target, download=True), str(target / "FashionMNIST" / "raw")
        except (OSError, RuntimeError) as exc:
            tried = f" and could not be downloaded ({type(exc).__name__})"
    if found is None:
        where = (f"in {Path(root).resolve()} (neither FashionMNIST/raw/ nor the four IDX files)" if root
                 else f"installed (nothing in {DEBIAN_DIR} or {Path(DEFAULT_ROOT).resolve()}/FashionMNIST/raw)")
        raise ConfigError(f"data.root: fashion_mnist is not {where}{tried}; {HOW_TO_GET}")
    arrays, where = found
    _check(arrays, where)
    log.info("fashion_mnist: %d training and %d test images from %s",
             len(arrays["train"][1]), len(arrays["test"][1]), where)
    images = np.concatenate([arrays["train"][0], arrays["test"][0]])
    targets = np.concatenate([arrays["train"][1], arrays["test"][1]]).astype(np.int64)
    return Source(
        targets=targets, num_classes=10,
        images=lambda: images[:, None],  # one grey channel; held as the record's 3 (as digits)
        base=ArrayImages(images, targets), test_from=len(arrays["train"][1]),
    )


DATASETS = (
    DatasetSpec(
        name="fashion_mnist",
        description="Zalando's Fashion-MNIST: 28x28 grey clothing, 60,000 train + 10,000 official test",
        load=_load, shape=(3, SIDE, SIDE), num_classes=10, images=70_000, official_test=True,
        # no download unless asked: the offline source is Debian's package, and a missing dataset
        # should say how to get it at once rather than try two mirrors first
        options={"root": None, "download": False}, how_to_get=HOW_TO_GET,
    ),
)
