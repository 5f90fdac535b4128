"""``digits``: scikit-learn's bundled 1,797 real 8x8 handwritten digits (the offline default)."""
from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits

from evaluators.datasets.record import DatasetSpec, Source


def _load() -> Source:
    bunch = load_digits()
    images = bunch.images.astype(np.float32) / 16.0  # 0..16 grey levels
    # grey repeated into 3 channels: every stem in the spaces takes RGB
    x = np.repeat(images[:, None], 3, axis=1)
    return Source(targets=bunch.target, num_classes=10, images=lambda: x, scale=1)


DATASETS = (
    DatasetSpec(
        name="digits", description="scikit-learn's bundled 1,797 8x8 handwritten digits (offline)",
        load=_load, shape=(3, 8, 8), num_classes=10, images=1797,
        storages=("memory",),  # 1,797 tiny images: streaming would only add decode time
    ),
)
