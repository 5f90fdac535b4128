"""What an evaluator's ranking leans on: each network's features, and how each feature goes with an
evaluator's scores against how it goes with the ground truth.

An evaluator that ranks by size, say, correlates with MACs far more than the ground truth does; a
supernet that favours members close to the largest one correlates with expansion and depth. For
each feature this prints Spearman's rho with the evaluator's scores, with the ground truth, and with
the evaluator's rank error (its rank minus the truth's rank: positive where it ranks a network too
high), so the feature that explains the disagreement stands out. Used by fidelity.py and
oneshot_rank.py.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import rankdata, spearmanr

from search_spaces.arch import Architecture
from search_spaces.cost import cost

FEATURES = ("resolution", "width", "layers", "e1_layers", "expansion", "kernel", "se_share", "macs_m", "params_m")


def features(arch: Architecture | str, num_classes: int = 10) -> dict[str, float]:
    """Resolution, width multiplier, layer count, expansion-1 layers (their depthwise conv reads the
    block's input: weights of their own in the supernet), mean expansion, kernel and SE share over
    layers, MACs and parameters (millions)."""
    arch = Architecture.parse(arch) if isinstance(arch, str) else arch
    layers = [b for stage in arch.stages for b in stage for _ in range(b.repeats)]
    counted = cost(arch, num_classes)
    return {
        "resolution": float(arch.resolution), "width": float(arch.width), "layers": float(len(layers)),
        "e1_layers": float(sum(b.kind == "mb" and b.expansion == 1 for b in layers)),
        "expansion": float(np.mean([b.expansion for b in layers])),
        "kernel": float(np.mean([b.kernel for b in layers])),
        "se_share": float(np.mean([b.se > 0 for b in layers])),
        "macs_m": counted.macs / 1e6, "params_m": counted.params / 1e6,
    }


def feature_table(archs: Sequence[str], score: Sequence[float], truth: Sequence[float]) -> pd.DataFrame:
    """Per feature: Spearman's rho with ``score``, with ``truth``, and with the rank error."""
    frame = pd.DataFrame([features(a) for a in archs])
    error = rankdata(score) - rankdata(truth)
    rows = []
    for name in FEATURES:
        values = frame[name].to_numpy()
        if np.ptp(values) == 0:
            continue  # a feature every network shares says nothing
        rows.append({"feature": name, "rho_score": spearmanr(values, score).statistic,
                     "rho_truth": spearmanr(values, truth).statistic,
                     "rho_error": spearmanr(values, error).statistic})
    return pd.DataFrame(rows)


def print_feature_table(table: pd.DataFrame, indent: str = "  ") -> None:
    print(f"{indent}{'feature':<12}{'rho score':>10}{'rho truth':>10}{'rho rank error':>16}")
    for row in table.itertuples():
        print(f"{indent}{row.feature:<12}{row.rho_score:>10.2f}{row.rho_truth:>10.2f}{row.rho_error:>16.2f}")
