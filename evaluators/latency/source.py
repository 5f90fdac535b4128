"""Latency in a search: each candidate's ``latency_ms`` from a measurement, the table or the learned
predictor, known before training (so constraints reject candidates for free), and the MnasNet reward.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evaluators.base import Evaluator, Wrapper
from evaluators.latency.measure import SETTING_KEYS, LatencySettings, Measurer
from evaluators.latency.parts import network_keys, part_module
from evaluators.latency.predictors import LearnedPredictor
from evaluators.latency.profile import space_parts
from evaluators.latency.store import ProfileStore
from search_spaces.arch import Architecture
from search_spaces.errors import ConfigError, NasError, unknown
from search_spaces.layout import resolve
from search_spaces.space import SearchSpace

log = logging.getLogger(__name__)
SOURCES = ("auto", "none", "measured", "table", "learned")


class LatencySource:
    """``latency_ms`` of a space's architectures, memoised; ``source`` says how it is known.

    ``table`` and ``learned`` read the profile of the target fingerprint (``profile=DIR`` names one
    explicitly, e.g. measured on another device); parts the table lacks (a head for another number
    of classes) are measured on the spot only when this machine is that target.
    """

    def __init__(self, source: str, space: SearchSpace, num_classes: int, settings: LatencySettings,
                 out: str | Path | None = "results", profile: str | Path | None = None) -> None:
        if source not in SOURCES or source == "none":
            raise unknown("latency", source, SOURCES)
        self.space, self.num_classes, self.settings = space, num_classes, settings
        here = settings.fingerprint()
        # No profile folder (a run kept in memory, out=None): only measurement is possible.
        self.store = ProfileStore(profile) if profile else (
            ProfileStore.for_fingerprint(out, here) if out is not None else None)
        self.local = self.store is None or self.store.fingerprint == here
        self.fingerprint = here if self.store is None else self.store.fingerprint
        self._cache: dict[str, float] = {}
        self._measurer: Measurer | None = None
        self.table = self.store.table() if self.store is not None and self.store.exists else None
        self.learned: LearnedPredictor | None = None
        learned = self.store.learned() if self.store is not None else None
        if isinstance(learned, LearnedPredictor) and learned.space == space.name:
            self.learned = learned
        if source == "auto":  # the learned model only where it beat the table out of fold
            usable = self.table is not None and self._covers()
            better = self.learned is not None and self.learned.beats_table
            source = ("learned" if better else "table") if usable else "measured"
        if source == "measured" and not self.local:
            raise ConfigError(
                f"latency=measured: the profile {self.store.path} is for another setup ("
                + "; ".join(self.fingerprint.differences(here)) + "); measuring here would not match it")
        if source in ("table", "learned") and self.table is None:
            if self.store is None:
                raise ConfigError(f"latency={source}: a run kept in memory (out=None) has no profile "
                                  "folder; give latency.profile=DIR")
            self.store.table()  # raises the one-line "no profile" error
        if source == "learned" and self.learned is None:
            raise ConfigError(f"latency=learned: no learned predictor for space {space.name} in {self.store.path}; "
                              f"fit one with nas latency fit space={space.name}")
        if source in ("table", "learned") and not self._covers():
            raise ConfigError(f"latency={source}: the profile in {self.store.path} does not cover space "
                              f"{space.name}; profile it with nas latency profile space={space.name}")
        self.source = source

    def _covers(self) -> bool:
        """Whether the table has every part (heads for another class count excepted, when local)."""
        assert self.table is not None
        missing = [k for k in space_parts(self.space, self.num_classes) if k not in self.table.entries]
        return not missing or (self.local and all(k.startswith("head:") for k in missing))

    @property
    def measurer(self) -> Measurer:
        if self._measurer is None:
            self._measurer = Measurer(self.settings)
        return self._measurer

    def _fill(self, arch: Architecture) -> None:
        """Measure the parts of ``arch`` the table lacks (local profiles only) and store them."""
        assert self.table is not None
        if not self.table.missing(arch, self.num_classes):
            return
        layout = resolve(arch)
        for key, part in zip(network_keys(arch, self.num_classes), (layout.stem, *layout.layers, layout.head)):
            self.part_latency(key, part)

    def part_latency(self, key: str, part: Any) -> float:
        """The table latency of one part (e.g. a supernet candidate), measured into a local profile
        when missing."""
        if self.table is None:
            self.store.table()  # raises the one-line "no profile" error
        if key not in self.table.entries:
            if not self.local:
                raise ConfigError(f"latency table ({self.fingerprint.slug}) has no entry for {key}; profile the "
                                  "space it comes from (nas latency profile space=...)")
            measured = self.measurer.measure(*part_module(part, self.num_classes))
            self.store.add_parts({key: measured})
            self.table.update({key: measured.latency_ms})
        return self.table.entries[key]

    def __call__(self, arch: Any) -> float:
        if isinstance(arch, str):
            arch = Architecture.parse(arch)
        key = str(arch)
        if key not in self._cache:
            if self.source == "measured":
                value = self.measurer.network(arch, self.num_classes).latency_ms
            else:
                self._fill(arch)
                if self.source == "learned":
                    assert self.learned is not None
                    value = float(self.learned.predict(self.space, [arch], self.table)[0])
                else:
                    value = self.table.predict(arch, self.num_classes)  # type: ignore[union-attr]
            self._cache[key] = float(value)
        return self._cache[key]


def mnas_reward(accuracy: float, latency_ms: float, target_ms: float, w: float) -> float:
    """MnasNet's soft-constrained reward ``accuracy * (latency / target) ** w``."""
    return accuracy * (latency_ms / target_ms) ** w


class WithLatency(Wrapper):
    """An evaluator whose metrics also carry ``latency_ms``, ``latency_source`` and, when asked,
    the MnasNet reward ``mnas`` and the int8 latency ``latency_int8_ms``; everything else is the
    wrapped evaluator's."""

    def __init__(self, inner: Evaluator, latency: LatencySource | None, mnas: tuple[float, float] | None = None,
                 primary: str = "accuracy", int8: LatencySource | None = None) -> None:
        super().__init__(inner)
        self.latency, self.mnas, self.primary, self.int8 = latency, mnas, primary, int8

    def __call__(self, arch: Any, report: Any = None, repeat: int = 0) -> Any:
        raw = self.inner(arch, report, repeat=repeat)
        metrics = dict(raw) if isinstance(raw, Mapping) else {self.primary: raw}
        if metrics.get("status", "ok") != "ok":
            return metrics
        start, timed = time.perf_counter(), False
        if "latency_ms" in metrics:
            metrics.setdefault("latency_source", "evaluator")
        elif self.latency is not None:
            metrics["latency_ms"], metrics["latency_source"], timed = self.latency(arch), self.latency.source, True
        if self.int8 is not None and "latency_int8_ms" not in metrics:
            metrics["latency_int8_ms"], timed = self.int8(arch), True
        if timed:
            metrics["latency_s"] = time.perf_counter() - start  # what knowing it cost this evaluation
        if self.mnas is not None and "latency_ms" in metrics:
            accuracy = metrics.get("accuracy")
            if isinstance(accuracy, (int, float)) and not math.isnan(accuracy):
                metrics["mnas"] = mnas_reward(accuracy, metrics["latency_ms"], *self.mnas)
        return metrics


def latency_settings(options: Mapping[str, Any]) -> LatencySettings:
    """``LatencySettings`` from a run's latency group (only the measurement keys)."""
    try:
        return LatencySettings(**{k: options[k] for k in SETTING_KEYS if options.get(k) is not None})
    except NasError as exc:  # name the run's key: latency.device, not device
        message = str(exc)
        message = f"unknown latency.{message[8:]}" if message.startswith("unknown ") else f"latency.{message}"
        raise ConfigError(message) from None
