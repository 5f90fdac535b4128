"""`LatencyTable`: per-part latencies of one fingerprint; a network's latency is their calibrated sum.

Timed alone, a part misses what a whole network adds or saves (framework dispatch between parts,
caches warm from the previous part, weights that no longer fit in cache once the whole network
runs), so the sum is mapped to whole-network latency by a calibration fitted on measured networks.
Three forms, the one with the lowest leave-one-out error on those networks is kept:

- ``linear``: ``scale * sum + offset`` (fitted on relative error);
- ``power``: ``scale * sum ** exponent`` (a line in log space: bends with the range of the networks);
- ``kinds``: ``power`` times ``exp(sum_k w_k * share_k)``, where ``share_k`` is the part of the sum
  spent in parts of kind ``k`` (stem, head, each block kind): kinds that lose or gain more than
  others when joined into a network get their own correction.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from evaluators.latency.fingerprint import Fingerprint
from evaluators.latency.parts import network_keys
from search_spaces.arch import Architecture
from search_spaces.errors import ConfigError

FORMS = ("linear", "power", "kinds")
MIN_NETWORKS = 2


@lru_cache(maxsize=1 << 16)
def part_kind(key: str) -> str:
    """A part's kind from its table key: ``stem``, ``head`` or the block kind."""
    return key.split(":", 1)[0]


@dataclass(frozen=True)
class Calibration:
    scale: float = 1.0
    offset_ms: float = 0.0
    networks: int = 0  # how many measured networks it was fitted on
    form: str = "linear"
    exponent: float = 1.0
    kind_weights: tuple[tuple[str, float], ...] = ()
    cv_mape: float | None = None  # leave-one-out MAPE (%) of this form on the networks it was fitted on

    def __call__(self, block_sum_ms: float | np.ndarray,
                 shares: Mapping[str, float | np.ndarray] | None = None) -> float | np.ndarray:
        out = self.scale * np.asarray(block_sum_ms, dtype=float) ** self.exponent
        if self.kind_weights:
            shares = shares or {}
            out = out * np.exp(sum(w * np.asarray(shares.get(k, 0.0), dtype=float) for k, w in self.kind_weights))
        out = out + self.offset_ms
        return float(out) if out.ndim == 0 else out

    def describe(self) -> str:
        if self.form == "linear":
            text = f"{self.scale:.3f} x sum {self.offset_ms:+.3f} ms"
        else:
            text = f"{self.scale:.3f} x sum^{self.exponent:.3f}"
            if self.kind_weights:
                text += " x exp(" + " ".join(f"{w:+.2f}*{k}" for k, w in self.kind_weights) + ")"
        cv = f", leave-one-out MAPE {self.cv_mape:.1f}%" if self.cv_mape is not None else ""
        return f"{self.form}: {text} ({self.networks} networks{cv})"

    def to_dict(self) -> dict[str, object]:
        return {"form": self.form, "scale": self.scale, "offset_ms": self.offset_ms, "exponent": self.exponent,
                "kind_weights": [list(kw) for kw in self.kind_weights], "networks": self.networks,
                "cv_mape": self.cv_mape}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Calibration:
        """Also reads the first format (``scale``, ``offset_ms``, ``networks``: a linear calibration)."""
        data = dict(data)
        weights = tuple((str(k), float(w)) for k, w in data.pop("kind_weights", []) or [])  # type: ignore[union-attr]
        if data.get("form", "linear") not in FORMS:
            raise ConfigError(f"latency calibration: unknown form {data.get('form')!r}, one of {', '.join(FORMS)}")
        return cls(**data, kind_weights=weights)  # type: ignore[arg-type]


def fit_calibration(block_sums: Sequence[float], measured: Sequence[float]) -> Calibration:
    """Least squares on relative error: minimise sum(((scale * s + offset) - m) / m)^2."""
    s, m = np.asarray(block_sums, float), np.asarray(measured, float)
    if len(s) < MIN_NETWORKS:
        raise ConfigError(f"latency calibration: needs at least {MIN_NETWORKS} measured networks, got {len(s)}")
    design = np.column_stack([s / m, 1.0 / m])
    (scale, offset), *_ = np.linalg.lstsq(design, np.ones_like(m), rcond=None)
    return Calibration(float(scale), float(offset), len(s))


def _fit_log(s: np.ndarray, shares: np.ndarray, m: np.ndarray, kinds: Sequence[str]) -> Calibration:
    """``log m = a + b log s (+ shares @ w)`` by least squares; a small ridge keeps the share weights
    finite when a kind's share barely varies."""
    columns = [np.ones_like(s), np.log(s)]
    x = np.column_stack([*columns, shares] if len(kinds) else columns)
    ridge = np.diag([0.0, 0.0] + [1e-3] * len(kinds))
    coef = np.linalg.solve(x.T @ x + ridge, x.T @ np.log(m))
    return Calibration(float(np.exp(coef[0])), 0.0, len(s), "kinds" if len(kinds) else "power", float(coef[1]),
                       tuple((k, float(w)) for k, w in zip(kinds, coef[2:])))


def _fit_form(form: str, s: np.ndarray, shares: np.ndarray, m: np.ndarray, kinds: Sequence[str]) -> Calibration:
    if form == "linear":
        return fit_calibration(s, m)
    return _fit_log(s, shares if form == "kinds" else shares[:, :0], m, kinds if form == "kinds" else ())


def _parameters(form: str, kinds: Sequence[str]) -> int:
    return 2 + (len(kinds) if form == "kinds" else 0)


def fit_table_calibration(block_sums: Sequence[float], measured: Sequence[float],
                          kind_sums: Sequence[Mapping[str, float]] | None = None,
                          forms: Sequence[str] = FORMS) -> Calibration:
    """The calibration form with the lowest leave-one-out MAPE on these networks, refitted on all.

    A form is tried only with at least three networks more than it has parameters; with fewer than
    five networks the linear form is fitted as is.
    """
    s, m = np.asarray(block_sums, float), np.asarray(measured, float)
    if len(s) < MIN_NETWORKS:
        raise ConfigError(f"latency calibration: needs at least {MIN_NETWORKS} measured networks, got {len(s)}")
    if np.any(s <= 0) or np.any(m <= 0):
        raise ConfigError("latency calibration: part sums and measured latencies must be positive")
    unknown = [f for f in forms if f not in FORMS]
    if unknown:
        raise ConfigError(f"latency calibration: unknown form {unknown[0]!r}, one of {', '.join(FORMS)}")
    # Shares sum to one, so one kind's is implied: the kind with the largest total (the blocks)
    # is the reference the others are corrected against.
    totals: dict[str, float] = {}
    for row in kind_sums or []:
        for k, v in row.items():
            totals[k] = totals.get(k, 0.0) + v
    kinds = sorted(k for k in totals if k != max(totals, key=totals.__getitem__))
    shares = np.array([[row.get(k, 0.0) / total for k in kinds] for row, total in zip(kind_sums or [], s)]) \
        if kinds else np.zeros((len(s), 0))
    candidates = [f for f in forms if len(s) >= max(5, _parameters(f, kinds) + 3)
                  and (f != "kinds" or kinds)]
    if not candidates:
        return fit_calibration(s, m)
    best: tuple[float, Calibration] | None = None
    for form in candidates:
        errors = []
        for i in range(len(s)):
            keep = np.arange(len(s)) != i
            c = _fit_form(form, s[keep], shares[keep], m[keep], kinds)
            predicted = c(s[i], dict(zip(kinds, shares[i])))
            errors.append(abs(predicted - m[i]) / m[i])
        mape = 100 * float(np.mean(errors))
        if best is None or mape < best[0] - 1e-9:
            best = (mape, _fit_form(form, s, shares, m, kinds))
    mape, chosen = best  # type: ignore[misc]
    return Calibration(chosen.scale, chosen.offset_ms, chosen.networks, chosen.form, chosen.exponent,
                       chosen.kind_weights, mape)


@dataclass
class LatencyTable:
    """Median latency (ms) of each part of a space's networks, measured under ``fingerprint``."""

    fingerprint: Fingerprint
    entries: dict[str, float] = field(default_factory=dict)
    calibration: Calibration = field(default_factory=Calibration)

    def missing(self, arch: Architecture, num_classes: int) -> list[str]:
        return [k for k in dict.fromkeys(network_keys(arch, num_classes)) if k not in self.entries]

    def kind_sums(self, arch: Architecture, num_classes: int) -> dict[str, float]:
        """Sum of the parts' latencies per part kind (uncalibrated)."""
        sums: dict[str, float] = {}
        try:
            for key in network_keys(arch, num_classes):
                kind = part_kind(key)
                sums[kind] = sums.get(kind, 0.0) + self.entries[key]
        except KeyError as exc:
            raise self._no_entry(exc.args[0]) from None
        return sums

    def block_sum(self, arch: Architecture, num_classes: int) -> float:
        """Sum of the parts' latencies (uncalibrated)."""
        try:
            return sum(self.entries[k] for k in network_keys(arch, num_classes))
        except KeyError as exc:
            raise self._no_entry(exc.args[0]) from None

    def _no_entry(self, key: str) -> ConfigError:
        return ConfigError(f"latency table ({self.fingerprint.slug}) has no entry for {key}; profile the "
                           "space this architecture comes from (nas latency profile space=...)")

    def predict(self, arch: Architecture, num_classes: int) -> float:
        """Predicted latency of the whole network in ms."""
        return float(self.predict_many([arch], num_classes)[0])

    def predict_many(self, archs: Sequence[Architecture], num_classes: int) -> np.ndarray:
        """Predicted latencies (ms) of many networks, calibrated in one vectorised step."""
        kinds = [k for k, _ in self.calibration.kind_weights]
        totals, by_kind = self._sums(archs, num_classes, kinds)
        return self.calibration(totals, {k: by_kind[k] / totals for k in kinds})

    def _sums(self, archs: Sequence[Architecture], num_classes: int,
              kinds: Sequence[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Per network, the sum of its parts' latencies and, for each of ``kinds``, that of its
        parts of the kind: one pass over all keys, summed with numpy rather than per network."""
        keyed = [network_keys(a, num_classes) for a in archs]
        flat = [k for keys in keyed for k in keys]
        try:
            values = np.array([self.entries[k] for k in flat], dtype=float)
        except KeyError as exc:
            raise self._no_entry(exc.args[0]) from None
        owner = np.repeat(np.arange(len(keyed)), [len(keys) for keys in keyed])
        totals = np.bincount(owner, weights=values, minlength=len(keyed))
        if not kinds:
            return totals, {}
        of_kind = np.array([part_kind(k) for k in flat])
        return totals, {kind: np.bincount(owner, weights=np.where(of_kind == kind, values, 0.0),
                                          minlength=len(keyed)) for kind in kinds}

    def update(self, measured: Mapping[str, float]) -> None:
        self.entries.update(measured)
