"""Latency predictors over whole networks: the calibrated table, a learned model, a MACs baseline.

Each maps a list of architectures to predicted milliseconds in one call (``predict``), so
evaluating thousands of candidates costs one vectorised model call.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.model_selection import cross_val_predict

from evaluators.latency.table import LatencyTable, fit_calibration
from search_spaces.arch import Architecture
from search_spaces.cost import cost
from search_spaces.errors import ConfigError
from search_spaces.space import SearchSpace


class TablePredictor:
    """Calibrated sum of the parts' table latencies."""

    name = "table"

    def __init__(self, table: LatencyTable, num_classes: int) -> None:
        self.table = table
        self.num_classes = num_classes

    def predict(self, archs: Sequence[Architecture]) -> np.ndarray:
        return self.table.predict_many(archs, self.num_classes)


class MacsLinear:
    """Baseline: latency as an affine function of MACs, fitted on measured networks."""

    name = "macs"

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fit_ = None

    def fit(self, archs: Sequence[Architecture], measured_ms: Sequence[float]) -> MacsLinear:
        self.fit_ = fit_calibration([cost(a, self.num_classes).macs for a in archs], measured_ms)
        return self

    def predict(self, archs: Sequence[Architecture]) -> np.ndarray:
        if self.fit_ is None:
            raise ConfigError("latency: the MACs baseline needs measured networks to fit on")
        macs = np.array([cost(a, self.num_classes).macs for a in archs], dtype=float)
        return np.asarray(self.fit_(macs), dtype=float)


class LearnedPredictor:
    """Gradient boosting on the space's encoding of an architecture plus its table prediction,
    trained on measured networks.

    With a table it learns the log-ratio of measured to calibrated-table latency (what the table
    misses, e.g. how parts interact); without one, log latency itself. Shallow, shrunken trees with
    large leaves: measured latencies are noisy, and a flexible model learns the noise.
    """

    name = "learned"

    def __init__(self, space: str, num_classes: int, seed: int = 0) -> None:
        self.space = space
        self.num_classes = num_classes
        self.model = GradientBoostingRegressor(n_estimators=200, learning_rate=0.02, max_depth=2,
                                               min_samples_leaf=15, subsample=0.7, random_state=seed)
        self.uses_table = False
        self.trained_on = 0
        self.cv_mape = float("nan")  # 5-fold out-of-fold MAPE (%) on the training networks
        self.table_mape: float | None = None  # the calibrated table's MAPE on the same networks

    def _features(self, space: SearchSpace, archs: Sequence[Architecture],
                  table: LatencyTable | None) -> tuple[np.ndarray, np.ndarray | None]:
        rows = np.array([space.encode(a) for a in archs], dtype=float)
        if table is None:
            macs = np.array([[np.log(cost(a, self.num_classes).macs)] for a in archs])
            return np.hstack([rows, macs]), None
        base = table.predict_many(archs, self.num_classes)
        return np.hstack([rows, np.log(base)[:, None]]), base

    def fit(self, space: SearchSpace, archs: Sequence[Architecture], measured_ms: Sequence[float],
            table: LatencyTable | None = None) -> LearnedPredictor:
        if space.name != self.space:
            raise ConfigError(f"latency: learned predictor is for space {self.space}, not {space.name}")
        if len(archs) < 10:
            raise ConfigError(f"latency: the learned predictor needs >= 10 measured networks, got {len(archs)}")
        x, base = self._features(space, archs, table)
        measured = np.asarray(measured_ms, dtype=float)
        y = np.log(measured) - (np.log(base) if base is not None else 0.0)
        self.uses_table = base is not None
        # Out-of-fold errors decide whether the model is worth using over the table it corrects.
        folds = min(5, len(archs) // 2)
        offset = np.log(base) if base is not None else 0.0
        held_out = np.exp(cross_val_predict(clone(self.model), x, y, cv=folds) + offset)
        self.cv_mape = float(100 * np.mean(np.abs(held_out - measured) / measured))
        self.table_mape = float(100 * np.mean(np.abs(base - measured) / measured)) if base is not None else None
        self.model.fit(x, y)
        self.trained_on = len(archs)
        self._data = (x, y)
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: settings, scores and the training data the model is refitted from on load.

        Stored as data, not as a pickle: a profile may come from another machine, and unpickling
        a file runs whatever code it names. Gradient boosting with a fixed ``random_state`` refits
        to the same model in well under a second.
        """
        x, y = self._data
        return {"space": self.space, "num_classes": self.num_classes, "seed": self.model.random_state,
                "uses_table": self.uses_table, "trained_on": self.trained_on, "cv_mape": self.cv_mape,
                "table_mape": self.table_mape, "x": x.tolist(), "y": y.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LearnedPredictor:
        predictor = cls(str(data["space"]), int(data["num_classes"]), int(data["seed"]))
        x, y = np.asarray(data["x"], dtype=float), np.asarray(data["y"], dtype=float)
        predictor.model.fit(x, y)
        predictor._data = (x, y)
        predictor.uses_table = bool(data["uses_table"])
        predictor.trained_on = int(data["trained_on"])
        predictor.cv_mape = float(data["cv_mape"])
        predictor.table_mape = None if data["table_mape"] is None else float(data["table_mape"])
        return predictor

    @property
    def beats_table(self) -> bool:
        """Whether its cross-validated error is below the calibrated table's on the same networks."""
        table_mape, cv_mape = getattr(self, "table_mape", None), getattr(self, "cv_mape", float("nan"))
        return table_mape is None or cv_mape < table_mape

    def predict(self, space: SearchSpace, archs: Sequence[Architecture],
                table: LatencyTable | None = None) -> np.ndarray:
        if self.uses_table and table is None:
            raise ConfigError("latency: this learned predictor was trained with a table; give it the table")
        x, base = self._features(space, archs, table if self.uses_table else None)
        if x.shape[1] != self.model.n_features_in_:
            raise ConfigError(f"latency: the learned predictor was trained on another encoding of space "
                              f"{self.space}; refit it with nas latency fit space={self.space}")
        out = np.exp(self.model.predict(x))
        return out * base if base is not None else out
