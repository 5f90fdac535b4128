"""A device profile on disk: ``<out>/latency/<fingerprint slug>/``.

- ``fingerprint.json``: what was measured on (checked on every load);
- ``parts.csv``: one row per timed part (key, latency, median, quartiles), appended as profiling
  goes, so an interrupted profile resumes where it stopped (a profile from before the wall-clock
  unit, which includes every one without a ``latency_ms`` column, is refused: re-profile);
- ``networks.csv``: whole networks measured for calibration and for the learned predictor;
- ``calibration.json``, ``learned.json``: the fitted predictors (data only: no pickles, since a
  profile may come from another machine).
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd

from evaluators.latency.fingerprint import UNIT, Fingerprint
from evaluators.latency.measure import Measurement
from evaluators.latency.table import Calibration, LatencyTable
from search_spaces.errors import ConfigError

MEASUREMENT_COLUMNS = ["latency_ms", "median_ms", "p25_ms", "p75_ms", "repeats"]
PART_COLUMNS = ["key", *MEASUREMENT_COLUMNS]
NETWORK_COLUMNS = ["space", "role", "arch", "num_classes", *MEASUREMENT_COLUMNS]


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path)


def _append(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    if rows:
        pd.DataFrame(rows, columns=columns).to_csv(path, mode="a", header=not path.exists(), index=False)


def _measurement(m: Measurement) -> dict[str, Any]:
    return {"latency_ms": m.latency_ms, "median_ms": m.median_ms, "p25_ms": m.p25_ms, "p75_ms": m.p75_ms,
            "repeats": m.repeats}


log = logging.getLogger(__name__)


def legacy_message(path: Path) -> str:
    """The one line that refuses a profile measured in the old reference-scaled unit."""
    return (f"latency profile {path} is in the old reference-scaled unit (about 0.7x wall-clock ms); "
            "re-profile: nas latency profile space=SPACE (same device, threads, batch)")


class ProfileStore:
    """Reads and writes one fingerprint's profile directory."""

    def __init__(self, path: str | Path, fingerprint: Fingerprint | None = None) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise ConfigError(f"latency.profile: expected a profile folder, got {path!r}")
        self.path = Path(path)
        found = self._read_fingerprint()
        if found is not None and found.unit != UNIT:
            raise ConfigError(legacy_message(self.path))
        if fingerprint is None and found is None:
            raise ConfigError(f"latency.profile: {self.path} holds no latency profile (no fingerprint.json)")
        if fingerprint is not None and found is not None and found != fingerprint:
            raise ConfigError(
                f"latency.profile: {self.path} was measured on another setup ("
                + "; ".join(found.differences(fingerprint)) + ")")
        self.fingerprint: Fingerprint = fingerprint or found  # type: ignore[assignment]

    @classmethod
    def for_fingerprint(cls, out: str | Path, fingerprint: Fingerprint) -> ProfileStore:
        return cls(Path(out) / "latency" / fingerprint.slug, fingerprint)

    def _read_fingerprint(self) -> Fingerprint | None:
        file = self.path / "fingerprint.json"
        try:
            if not file.exists():
                return None
            return Fingerprint.from_dict(json.loads(file.read_text()))
        except (OSError, ValueError, KeyError, TypeError) as exc:  # a folder given by hand may hold anything
            raise ConfigError(f"latency.profile: cannot read {file} ({' '.join(str(exc).split())[:200]})") from None

    @property
    def exists(self) -> bool:
        return (self.path / "parts.csv").exists()

    def _ensure(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        file = self.path / "fingerprint.json"
        if not file.exists():
            file.write_text(json.dumps(self.fingerprint.to_dict(), indent=2) + "\n")

    # -- parts ---------------------------------------------------------------------------------
    def parts(self) -> dict[str, float]:
        file = self.path / "parts.csv"
        if not file.exists():
            return {}
        frame = _read(file)
        return dict(zip(frame["key"], frame["latency_ms"].astype(float)))

    def add_parts(self, measured: dict[str, Measurement]) -> None:
        self._ensure()
        rows = [{"key": k, **_measurement(m)} for k, m in measured.items()]
        _append(self.path / "parts.csv", rows, PART_COLUMNS)

    # -- whole networks ------------------------------------------------------------------------
    def networks(self, space: str | None = None, role: str | None = None) -> pd.DataFrame:
        file = self.path / "networks.csv"
        if not file.exists():
            return pd.DataFrame(columns=NETWORK_COLUMNS)
        frame = _read(file)
        if space is not None:
            frame = frame[frame["space"] == space]
        if role is not None:
            frame = frame[frame["role"] == role]
        return frame.reset_index(drop=True)

    def add_network(self, space: str, role: str, arch: str, num_classes: int, m: Measurement) -> None:
        self._ensure()
        _append(self.path / "networks.csv", [{
            "space": space, "role": role, "arch": arch, "num_classes": num_classes, **_measurement(m),
        }], NETWORK_COLUMNS)

    # -- predictors ----------------------------------------------------------------------------
    def calibration(self) -> Calibration:
        file = self.path / "calibration.json"
        return Calibration.from_dict(json.loads(file.read_text())) if file.exists() else Calibration()

    def save_calibration(self, calibration: Calibration) -> None:
        self._ensure()
        (self.path / "calibration.json").write_text(json.dumps(calibration.to_dict(), indent=2) + "\n")

    def legacy_sibling(self) -> Path | None:
        """A profile beside this one for the same setup in the old reference-scaled unit, if any."""
        for file in sorted(self.path.parent.glob("*/fingerprint.json")):
            try:
                found = Fingerprint.from_dict(json.loads(file.read_text()))
            except (ConfigError, ValueError):
                continue
            if found.unit != UNIT and found.differences(self.fingerprint) == [f"unit: {found.unit} != {UNIT}"]:
                return file.parent
        return None

    def table(self) -> LatencyTable:
        if not self.exists:
            legacy = self.legacy_sibling()
            if legacy is not None:
                raise ConfigError(legacy_message(legacy))
            raise ConfigError(
                f"latency: no profile for {self.fingerprint.describe()} in {self.path}; make one with "
                "nas latency profile space=SPACE (same device, threads, batch)")
        return LatencyTable(self.fingerprint, self.parts(), self.calibration())

    def learned(self) -> Any | None:
        from evaluators.latency.predictors import LearnedPredictor  # noqa: PLC0415 - sklearn: a table needs none

        file = self.path / "learned.json"
        if not file.exists():
            if (self.path / "learned.pkl").exists():
                log.warning("latency: %s/learned.pkl is an old pickled predictor and is not loaded "
                            "(pickles can run code); refit it with nas latency fit", self.path)
            return None
        try:
            return LearnedPredictor.from_dict(json.loads(file.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"latency: cannot read the learned predictor {file} ({exc}); "
                              "refit it with nas latency fit") from None

    def save_learned(self, predictor: Any) -> None:
        self._ensure()
        tmp = self.path / "learned.json.tmp"
        tmp.write_text(json.dumps(predictor.to_dict()), encoding="utf-8")
        tmp.replace(self.path / "learned.json")
