"""``nas latency profile | fit | eval``: device profiles for latency prediction, and their accuracy.

- ``profile`` times every part a space's networks can contain on this machine (resumable), then
  ``calibrate`` whole seeded-random networks to fit the table's calibration;
- ``fit`` measures ``n`` more networks and trains the learned predictor on all of them;
- ``eval`` measures ``n`` fresh networks (none used for fitting) in ``passes`` interleaved passes
  and scores every predictor against them, next to the passes' own disagreement (machine noise).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from evaluators.latency.accuracy import PredictionAccuracy, prediction_accuracy
from evaluators.latency.measure import SETTING_KEYS, LatencySettings, Measurer, setting_defaults
from evaluators.latency.parts import clear_key_caches
from evaluators.latency.predictors import LearnedPredictor, MacsLinear, TablePredictor
from evaluators.latency.profile import (
    NETWORK_CHUNK,
    calibrate,
    measure_networks,
    profile_parts,
    sample_distinct,
    space_parts,
)
from evaluators.latency.store import ProfileStore
from evaluators.latency.table import Calibration
from search_spaces.arch import Architecture
from search_spaces.checks import check_int
from search_spaces.errors import ConfigError
from search_spaces.registry import load_space
from search_spaces.space import SearchSpace

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]  # (what, done, total)

LATENCY_DEFAULTS: dict[str, Any] = {
    "space": "mbconv", **setting_defaults(), "num_classes": 1000, "out": "results", "profile": None,
    "calibrate": 40, "n": 200, "passes": 2, "seed": 0, "progress": True, "json": False,
}
# Seeds of the network sets, apart so that no set reuses another's architectures by chance.
SEEDS = {"calibration": 1, "fit": 2, "eval": 3, "throughput": 4}


@dataclass(frozen=True)
class Session:
    space: SearchSpace
    measurer: Measurer
    store: ProfileStore
    num_classes: int


def open_session(cfg: Mapping[str, Any], need_local: bool = True) -> Session:
    """The space, measurer and profile store a latency command works on (all checked)."""
    for key in ("num_classes", "calibrate", "n", "passes"):
        check_int(key, cfg[key], 2 if key == "n" else (0 if key == "calibrate" else 1))
    if cfg["calibrate"] == 1:
        raise ConfigError("calibrate: 0 (leave the table uncalibrated) or at least 2 networks, got 1")
    settings = LatencySettings(**{k: cfg[k] for k in SETTING_KEYS})
    space = load_space(cfg["space"])
    space_parts(space, cfg["num_classes"])  # refuses spaces without a layout
    fingerprint = settings.fingerprint()
    if cfg.get("profile"):
        store = ProfileStore(cfg["profile"])
        if need_local and store.fingerprint != fingerprint:
            raise ConfigError(
                f"profile: {store.path} is for another setup (" + "; ".join(
                    store.fingerprint.differences(fingerprint)) + "); measure with the same settings")
    else:
        store = ProfileStore.for_fingerprint(cfg["out"], fingerprint)
    measurer = Measurer(settings)
    return Session(space, measurer, store, cfg["num_classes"])


def _bar(progress: Progress | None, what: str) -> Callable[[int, int], None] | None:
    return None if progress is None else (lambda done, total: progress(what, done, total))


@dataclass(frozen=True)
class ProfileReport:
    parts: int
    measured_now: int
    networks: int
    calibration: Calibration
    seconds: float


def profile(s: Session, calibrate_n: int, progress: Progress | None = None) -> ProfileReport:
    """Time every part of the space (what is missing), then ``calibrate_n`` networks; fit the calibration."""
    start = time.perf_counter()
    before = len(s.store.parts())
    table = profile_parts(s.space, s.measurer, s.store, s.num_classes, _bar(progress, "parts"))
    archs = sample_distinct(s.space, calibrate_n, SEEDS["calibration"])
    measure_networks(s.space, archs, s.measurer, s.store, "calibration", s.num_classes, _bar(progress, "networks"))
    calibration = calibrate(s.space, s.store, s.num_classes) if calibrate_n >= 2 else table.calibration
    return ProfileReport(len(space_parts(s.space, s.num_classes)), len(s.store.parts()) - before,
                         len(archs), calibration, time.perf_counter() - start)


def _measured(s: Session) -> tuple[list[Architecture], np.ndarray]:
    nets = s.store.networks(s.space.name)
    nets = nets[nets["num_classes"] == s.num_classes]
    return [Architecture.parse(a) for a in nets["arch"]], nets["latency_ms"].astype(float).to_numpy()


def fit(s: Session, n: int, progress: Progress | None = None) -> LearnedPredictor:
    """Measure ``n`` networks (resumable), recalibrate the table on every measured network of the
    space and train the learned predictor on them."""
    s.store.table()  # a profile must exist
    nets = s.store.networks(s.space.name)
    others = {s.space.key(Architecture.parse(a)) for a in nets[nets["role"] != "fit"]["arch"]}
    archs = sample_distinct(s.space, n, SEEDS["fit"], exclude=others)  # the same ones on a resume
    measure_networks(s.space, archs, s.measurer, s.store, "fit", s.num_classes, _bar(progress, "networks"))
    calibrate(s.space, s.store, s.num_classes)
    table = s.store.table()
    archs, measured = _measured(s)
    predictor = LearnedPredictor(s.space.name, s.num_classes).fit(s.space, archs, measured, table)
    s.store.save_learned(predictor)
    return predictor


@dataclass(frozen=True)
class EvalReport:
    n: int
    passes: np.ndarray  # (passes, n) median latency per pass
    accuracy: list[PredictionAccuracy]
    noise: PredictionAccuracy | None  # pass 2 scored against pass 1: what the machine itself allows

    @property
    def measured(self) -> np.ndarray:
        return self.passes.mean(axis=0)


def _throughput(fn: Callable[[list[Architecture]], np.ndarray], archs: list[Architecture],
                space: SearchSpace, repeats: int = 3) -> float:
    """Predictions per second over ``archs``, each time from a cold start (no memoised keys, layout
    steps or space conversions); the median of ``repeats`` timings, as one is at the machine's mercy."""
    rates = []
    for _ in range(repeats):
        clear_key_caches()
        space.forget_memos()
        start = time.perf_counter()
        fn(archs)
        rates.append(len(archs) / (time.perf_counter() - start))
    return float(np.median(rates))


def evaluate(s: Session, n: int, passes: int = 2, progress: Progress | None = None,
             throughput_n: int = 2000) -> EvalReport:
    """Measure ``n`` held-out networks ``passes`` times (alternating order) and score each predictor."""
    table = s.store.table()
    fitted, fitted_ms = _measured(s)
    held_out = sample_distinct(s.space, n, SEEDS["eval"], exclude={s.space.key(a) for a in fitted})
    rows = np.zeros((passes, len(held_out)))
    for p in range(passes):
        order = list(range(len(held_out)))[:: 1 if p % 2 == 0 else -1]
        for start in range(0, len(order), NETWORK_CHUNK):
            chunk = order[start:start + NETWORK_CHUNK]
            for i, m in zip(chunk, s.measurer.networks([held_out[i] for i in chunk], s.num_classes)):
                rows[p, i] = m.latency_ms
            if progress is not None:
                progress(f"pass {p + 1}/{passes}", start + len(chunk), len(held_out))
    measured = rows.mean(axis=0)
    fresh = sample_distinct(s.space, throughput_n, SEEDS["throughput"])
    predictors: list[tuple[str, Callable[[list[Architecture]], np.ndarray]]] = []
    table_predictor = TablePredictor(table, s.num_classes)
    predictors.append(("table", table_predictor.predict))
    learned = s.store.learned()
    if isinstance(learned, LearnedPredictor) and learned.space == s.space.name:
        predictors.append(("learned", lambda archs: learned.predict(s.space, archs, table)))
    if len(fitted) >= 2:
        macs = MacsLinear(s.num_classes).fit(fitted, fitted_ms)
        predictors.append(("macs-linear", macs.predict))
    results = []
    for name, predict in predictors:
        rate = _throughput(predict, fresh, s.space)
        results.append(prediction_accuracy(name, predict(held_out), measured, len(held_out) / rate))
    noise = prediction_accuracy("pass 2 vs pass 1", rows[1], rows[0], 0.0) if passes >= 2 else None
    return EvalReport(len(held_out), rows, results, noise)
