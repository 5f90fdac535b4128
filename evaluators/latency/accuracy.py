"""How well predicted latencies match measured ones: RMSE, MAPE, share within +-5 / 10 %, Kendall tau."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import kendalltau


@dataclass(frozen=True)
class PredictionAccuracy:
    predictor: str
    rmse_ms: float
    mape: float  # mean absolute percentage error, in %
    within_5: float  # share of predictions within +-5 % of the measured median, in %
    within_10: float
    kendall_tau: float
    predictions_per_s: float


def prediction_accuracy(predictor: str, predicted: Sequence[float], measured: Sequence[float],
                        seconds: float) -> PredictionAccuracy:
    p, m = np.asarray(predicted, float), np.asarray(measured, float)
    rel = np.abs(p - m) / m
    return PredictionAccuracy(
        predictor=predictor,
        rmse_ms=float(np.sqrt(np.mean((p - m) ** 2))),
        mape=float(100 * rel.mean()),
        within_5=float(100 * np.mean(rel <= 0.05)),
        within_10=float(100 * np.mean(rel <= 0.10)),
        kendall_tau=float(kendalltau(p, m).statistic),
        predictions_per_s=len(p) / seconds if seconds > 0 else float("inf"),
    )
