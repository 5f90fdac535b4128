"""EfficientNet compound scaling of one architecture into a family (``nas scale``).

A member at coefficient ``phi`` multiplies depth by ``alpha**phi`` and width by ``beta**phi``
through ``scale_architecture``, so channels and repeats are rounded exactly as the builder rounds
them (``make_divisible(c * w, 8)``, ``ceil(n * d)`` per stage). Resolution is the free dimension:

- it is a multiple of ``ResolutionRule.multiple`` (8 by default; the base member keeps its own);
- with ``match_macs`` (the default) it is the multiple whose MACs come closest to
  ``budget ** phi`` times the base's (``budget=2`` by default: the paper's "FLOPs grow by 2^phi",
  which its coefficients only approximate, 1.2 * 1.1**2 * 1.15**2 = 1.92; ``budget=None`` follows
  the coefficients' product instead), because rounding shallow stages up
  (1 layer -> 2 at d=1.2) would otherwise make a phi=1 member cost 1.7x-2.6x the base instead of
  the paper's ~2x; without it the resolution is simply ``base * gamma**phi`` rounded.

Explicit ``(width, depth[, resolution[, dropout]])`` pairs reproduce published families such as
torchvision's EfficientNet-B1..B7. Latency is predicted from a device profile's table only when one
exists; ``search_coefficients`` grid-searches (alpha, beta, gamma) under alpha*beta^2*gamma^2 ~ 2
at phi=1, as the EfficientNet paper did.
"""
from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from evaluators.base import DEFAULT_DATA, EvaluationFailed
from evaluators.registry import make_evaluator
from search_spaces.arch import Architecture
from search_spaces.checks import check_int
from search_spaces.cost import cost
from search_spaces.errors import ConfigError, NasError
from search_spaces.layout import resolve
from search_spaces.scaling import compound_multipliers, scale_architecture
from search_spaces.zoo import EFFICIENTNET_SCALING

log = logging.getLogger(__name__)

Pair = tuple[float, float, int | None, float | None]  # width, depth, resolution, dropout


@dataclass(frozen=True)
class ScaleCoefficients:
    """Depth (alpha), width (beta) and resolution (gamma) bases of compound scaling."""

    alpha: float = 1.2
    beta: float = 1.1
    gamma: float = 1.15

    def __post_init__(self) -> None:
        for name in ("alpha", "beta", "gamma"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(f"{name}: must be a number > 0, got {value!r}")

    @property
    def product(self) -> float:
        """alpha * beta^2 * gamma^2: how much MACs grow per unit of phi."""
        return self.alpha * self.beta**2 * self.gamma**2


@dataclass(frozen=True)
class ResolutionRule:
    """How a scaled member's input resolution is rounded (see the module docstring)."""

    multiple: int = 8
    match_macs: bool = True
    budget: float | None = 2.0  # MACs growth per unit of phi; None: the coefficients' product

    def __post_init__(self) -> None:
        check_int("res_multiple", self.multiple, 1)
        budget = self.budget
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float)) or budget <= 0):
            raise ConfigError(f"budget: must be a number > 0 or null (alpha*beta^2*gamma^2), got {budget!r}")

    def growth(self, coefficients: ScaleCoefficients) -> float:
        """MACs growth per unit of phi the resolution is matched to."""
        return coefficients.product if self.budget is None else float(self.budget)


@dataclass(frozen=True)
class FamilyMember:
    """One scaled architecture and what it costs."""

    label: str
    phi: float | None  # None for an explicit (width, depth) pair
    arch: str
    width: float  # multipliers relative to the base
    depth: float
    resolution: int
    params: int
    macs: int
    latency_ms: float | None = None


@dataclass(frozen=True)
class Grid:
    """Candidate (alpha, beta, gamma): every grid value in [low, high] with |product - target| <= tolerance."""

    low: float = 1.0
    high: float = 2.0
    step: float = 0.05
    tolerance: float = 0.1
    target: float = 2.0

    def __post_init__(self) -> None:
        checks = (("grid_min", self.low, self.low > 0, "> 0"), ("grid_step", self.step, self.step > 0, "> 0"),
                  ("grid_max", self.high, self.high >= self.low, f">= grid_min ({self.low})"),
                  ("tolerance", self.tolerance, self.tolerance >= 0, ">= 0"),
                  ("target", self.target, self.target > 0, "> 0"))
        for name, value, ok, rule in checks:
            if not ok:
                raise ConfigError(f"{name}: must be {rule}, got {value!r}")

    def values(self) -> list[float]:
        # Counted in steps, not accumulated, so 1.0 + 4 * 0.05 is 1.2 and not 1.2000000000000002.
        n = math.floor((self.high - self.low) / self.step + 1e-9)
        return [round(self.low + i * self.step, 10) for i in range(n + 1)]

    def points(self) -> list[ScaleCoefficients]:
        """The candidates in (alpha, beta, gamma) order."""
        values = self.values()
        found = [ScaleCoefficients(a, b, g) for a, b, g in itertools.product(values, values, values)
                 if abs(a * b * b * g * g - self.target) <= self.tolerance + 1e-12]
        if not found:
            raise ConfigError(f"tolerance: no (alpha, beta, gamma) on the grid {self.low}..{self.high} step "
                              f"{self.step} has alpha*beta^2*gamma^2 within {self.tolerance} of {self.target}")
        return found


@dataclass(frozen=True)
class GridPoint:
    """One evaluated candidate of the coefficient search (its phi=1 member)."""

    alpha: float
    beta: float
    gamma: float
    product: float
    arch: str
    resolution: int
    params: int
    macs: int
    accuracy: float  # NaN when the evaluation failed


@dataclass(frozen=True)
class SearchResult:
    best: ScaleCoefficients
    points: tuple[GridPoint, ...]
    grid: Grid
    evaluator: str
    options: Mapping[str, Any]  # the evaluator's settings, recorded for reruns

    @property
    def best_point(self) -> GridPoint:
        return next(p for p in self.points if (p.alpha, p.beta, p.gamma) == (
            self.best.alpha, self.best.beta, self.best.gamma))


@dataclass(frozen=True)
class Family:
    """A base architecture and its scaled members; ``to_dict`` is the family YAML."""

    name: str
    base: str
    rule: str  # "compound" or "pairs"
    coefficients: ScaleCoefficients | None
    resolution: ResolutionRule | None
    num_classes: int
    members: tuple[FamilyMember, ...]
    latency_profile: str | None = None  # the profile directory latencies were predicted from
    search: SearchResult | None = None

    @property
    def base_cost(self) -> Any:
        return cost(self.base, self.num_classes)

    def to_dict(self) -> dict[str, Any]:
        base = self.base_cost
        data: dict[str, Any] = {"name": self.name, "base": self.base, "base_params": base.params,
                                "base_macs": base.macs, "rule": self.rule, "num_classes": self.num_classes}
        if self.coefficients is not None:
            data["coefficients"] = {**asdict(self.coefficients), "product": round(self.coefficients.product, 6)}
        if self.resolution is not None:
            data["resolution"] = asdict(self.resolution)
        data["latency_profile"] = self.latency_profile
        data["members"] = [asdict(m) for m in self.members]
        if self.search is not None:
            s = self.search
            data["search"] = {
                "evaluator": s.evaluator, "options": _plain(s.options), "grid": asdict(s.grid),
                "best": asdict(s.best), "points": [asdict(p) for p in s.points],
            }
        return data


def _plain(value: Any) -> Any:
    """Plain YAML types (OmegaConf containers and tuples become dicts and lists)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# -- one member ---------------------------------------------------------------------------------
def _round_to(value: float, multiple: int) -> int:
    return max(8, multiple * max(1, round(value / multiple)))


def _match_resolution(scaled: Architecture, target_macs: float, nominal: float, multiple: int,
                      num_classes: int) -> int:
    """The multiple of ``multiple`` whose MACs are closest to ``target_macs`` (in ratio).

    MACs never decrease with resolution, so the answer is one of the two multiples around the
    point where they cross the target; bisection finds it with a few cost evaluations.
    """
    def macs(k: int) -> int:
        return cost(scaled.replace(resolution=k * multiple), num_classes).macs

    lo = max(1, math.ceil(8 / multiple))
    hi = max(lo, round(nominal / multiple))
    while macs(hi) < target_macs:
        hi *= 2
    while lo < hi:  # smallest k with macs(k) >= target
        mid = (lo + hi) // 2
        if macs(mid) >= target_macs:
            hi = mid
        else:
            lo = mid + 1
    options = [k for k in (lo - 1, lo) if k * multiple >= 8]
    best = min(options, key=lambda k: (abs(math.log(macs(k) / target_macs)), abs(k * multiple - nominal)))
    return best * multiple


def scale_member(base: Architecture, phi: float, coefficients: ScaleCoefficients = ScaleCoefficients(),
                 rule: ResolutionRule = ResolutionRule(), num_classes: int = 1000) -> Architecture:
    """The compound-scaled member of ``base`` at coefficient ``phi`` (phi=0 is ``base`` itself)."""
    if isinstance(phi, bool) or not isinstance(phi, (int, float)) or phi < 0:
        raise ConfigError(f"phi: must be a number >= 0, got {phi!r}")
    if phi == 0:
        return base
    depth, width, res = compound_multipliers(phi, coefficients.alpha, coefficients.beta, coefficients.gamma)
    scaled = scale_architecture(base, width=width, depth=depth)
    nominal = base.resolution * res
    if not rule.match_macs:
        return scaled.replace(resolution=_round_to(nominal, rule.multiple))
    target = cost(base, num_classes).macs * rule.growth(coefficients)**phi
    return scaled.replace(resolution=_match_resolution(scaled, target, nominal, rule.multiple, num_classes))


def _member(label: str, phi: float | None, arch: Architecture, width: float, depth: float, num_classes: int,
            latency: Callable[[Architecture], float | None] | None) -> FamilyMember:
    c = cost(arch, num_classes)
    ms = latency(arch) if latency is not None else None
    return FamilyMember(label, phi, str(arch), round(width, 6), round(depth, 6), arch.resolution, c.params, c.macs,
                        None if ms is None else round(float(ms), 4))


def _phi(phi: float) -> float:
    """``2`` rather than ``2.0`` in the table and the YAML."""
    return int(phi) if float(phi).is_integer() else float(phi)


def _label(phi: float) -> str:
    return f"phi={_phi(phi)}"


# -- families -----------------------------------------------------------------------------------
def compound_family(base: Architecture, phis: Sequence[float], coefficients: ScaleCoefficients = ScaleCoefficients(),
                    rule: ResolutionRule = ResolutionRule(), num_classes: int = 1000, name: str = "family",
                    latency: MemberLatency | None = None, search: SearchResult | None = None) -> Family:
    """The members of ``base`` at each ``phi`` (in the order given)."""
    if not phis:
        raise ConfigError("phi: give at least one value, e.g. phi=3 (members 0..3)")
    members = []
    for phi in phis:
        arch = scale_member(base, phi, coefficients, rule, num_classes)
        depth, width, _ = compound_multipliers(phi, coefficients.alpha, coefficients.beta, coefficients.gamma)
        members.append(_member(_label(phi), _phi(phi), arch, width, depth, num_classes, latency))
        log.info("%s: %s", members[-1].label, members[-1].arch)
    return Family(name, str(base), "compound", coefficients, rule, num_classes, tuple(members),
                  latency.profile_dir if latency is not None else None, search)


def check_pairs(pairs: Sequence[Sequence[Any]]) -> list[Pair]:
    """``[[width, depth], [width, depth, resolution], [width, depth, resolution, dropout]]``, checked."""
    if not isinstance(pairs, Sequence) or isinstance(pairs, str) or not pairs:
        raise ConfigError(f"pairs: expected a list like [[1.1,1.2,260],[1.2,1.4,300]], got {pairs!r}")
    checked: list[Pair] = []
    for item in pairs:
        if isinstance(item, str) or not isinstance(item, Sequence) or not 2 <= len(item) <= 4:
            raise ConfigError(f"pairs: each entry is [width, depth] or [width, depth, resolution[, dropout]], "
                              f"got {item!r}")
        width, depth, *rest = item
        resolution = rest[0] if rest else None
        dropout = rest[1] if len(rest) > 1 else None
        for field, value in (("width", width), ("depth", depth)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(f"pairs: {field} must be a number > 0, got {value!r} in {list(item)}")
        if resolution is not None and (isinstance(resolution, bool) or not isinstance(resolution, int)
                                       or resolution < 8):
            raise ConfigError(f"pairs: resolution must be an integer >= 8, got {resolution!r} in {list(item)}")
        if dropout is not None and (isinstance(dropout, bool) or not isinstance(dropout, (int, float))
                                    or not 0 <= dropout < 1):
            raise ConfigError(f"pairs: dropout must be in [0, 1), got {dropout!r} in {list(item)}")
        checked.append((float(width), float(depth), resolution, None if dropout is None else float(dropout)))
    return checked


def pairs_family(base: Architecture, pairs: Sequence[Sequence[Any]], labels: Sequence[str] | None = None,
                 num_classes: int = 1000, name: str = "family", latency: MemberLatency | None = None) -> Family:
    """Members at explicit (width, depth[, resolution[, dropout]]) multipliers, e.g. torchvision's B1..B7."""
    checked = check_pairs(pairs)
    labels = list(labels) if labels is not None else [f"pair {i}" for i in range(len(checked))]
    members = []
    for label, (width, depth, resolution, dropout) in zip(labels, checked):
        arch = scale_architecture(base, width, depth, resolution, dropout)
        members.append(_member(label, None, arch, width, depth, num_classes, latency))
    return Family(name, str(base), "pairs", None, None, num_classes, tuple(members),
                  latency.profile_dir if latency is not None else None)


def efficientnet_pairs() -> tuple[list[str], list[Pair]]:
    """torchvision's (width, depth, resolution, dropout) of EfficientNet-B0..B7, labelled b0..b7."""
    names = sorted(EFFICIENTNET_SCALING)
    return [n.rpartition("_")[2] for n in names], [EFFICIENTNET_SCALING[n] for n in names]


# -- latency --------------------------------------------------------------------------------------
class MemberLatency:
    """Table-predicted latency of architectures from an existing device profile.

    Scaled members have parts (other channels, resolutions) the space's profile never timed; when
    this machine is the profile's target they are timed on the spot, part by part, and stored, as
    ``nas run latency=table`` does. For another machine's profile such a member gets None.
    """

    def __init__(self, store: Any, settings: Any, num_classes: int) -> None:
        self.store, self.settings, self.num_classes = store, settings, num_classes
        self.table = store.table()
        self.local = store.fingerprint == settings.fingerprint()
        self.profile_dir = str(store.path)

    def __call__(self, arch: Architecture) -> float | None:
        missing = self.table.missing(arch, self.num_classes)
        if missing and not self.local:
            log.warning("latency: the profile %s lacks %d parts of %s and is for another machine; no prediction",
                        self.store.path, len(missing), arch)
            return None
        if missing:
            self._measure(arch, set(missing))
        return float(self.table.predict(arch, self.num_classes))

    def _measure(self, arch: Architecture, missing: set[str]) -> None:
        from evaluators.latency.measure import Measurer  # noqa: PLC0415 - torch: only to time missing parts
        from evaluators.latency.parts import network_keys, part_module  # noqa: PLC0415 - torch

        layout = resolve(arch)
        parts = {}
        for key, part in zip(network_keys(arch, self.num_classes), (layout.stem, *layout.layers, layout.head)):
            if key in missing:
                parts.setdefault(key, part)
        log.info("latency: timing %d parts of %s missing from the profile", len(parts), arch)
        measured = Measurer(self.settings).measure_many([part_module(p, self.num_classes) for p in parts.values()])
        by_key = dict(zip(parts, measured))
        self.store.add_parts(by_key)
        self.table.update({k: m.latency_ms for k, m in by_key.items()})


def member_latency(settings: Any, num_classes: int, out: str | Path = "results",
                   profile: str | Path | None = None) -> MemberLatency | None:
    """A latency predictor when a profile exists (``profile`` or this machine's under ``out``), else None."""
    from evaluators.latency.store import ProfileStore  # noqa: PLC0415 - torch (the latency package)

    if profile:
        store = ProfileStore(profile)
        store.table()  # an explicitly named profile must hold a table: one-line error otherwise
    else:
        store = ProfileStore.for_fingerprint(out, settings.fingerprint())
        if not store.exists:
            log.info("latency: no profile in %s; members get no latency", store.path)
            return None
    return MemberLatency(store, settings, num_classes)


# -- coefficient search -------------------------------------------------------------------------
def proxy_evaluator(base: Architecture, data: Mapping[str, Any] | None = None, **options: Any) -> Any:
    """The proxy evaluator (digits by default), training members at resolutions relative to ``base``.

    Its ``resolution`` option is the pixels ``base`` trains at; a member at gamma times the base's
    resolution trains at gamma times that, so the search sees what resolution buys.
    """
    evaluator = make_evaluator("proxy", data=dict(data or DEFAULT_DATA), **options)
    evaluator.base_resolution = base.resolution
    return evaluator


def search_coefficients(
    base: Architecture,
    evaluate: Callable[[Architecture], Mapping[str, Any]],
    grid: Grid = Grid(),
    rule: ResolutionRule = ResolutionRule(),
    num_classes: int = 1000,
    evaluator: str = "proxy",
    options: Mapping[str, Any] | None = None,
    on_point: Callable[[int, int, GridPoint], None] | None = None,
) -> SearchResult:
    """Evaluate the phi=1 member of every grid candidate; the most accurate wins (ties: fewer MACs).

    Candidates whose phi=1 members are the same network are evaluated once. The evaluator should be
    seeded per architecture (the proxy evaluator is), which makes the result independent of order.
    """
    candidates = grid.points()
    seen: dict[str, float] = {}
    points: list[GridPoint] = []
    for i, c in enumerate(candidates):
        arch = scale_member(base, 1, c, rule, num_classes)
        key = str(arch)
        if key not in seen:
            try:
                seen[key] = float(evaluate(arch)["accuracy"])
            except EvaluationFailed as exc:
                log.warning("scale search: %s failed (%s)", key, exc)
                seen[key] = math.nan
        cst = cost(arch, num_classes)
        points.append(GridPoint(c.alpha, c.beta, c.gamma, round(c.product, 6), key, arch.resolution,
                                cst.params, cst.macs, seen[key]))
        if on_point is not None:
            on_point(i + 1, len(candidates), points[-1])
    scored = [p for p in points if not math.isnan(p.accuracy)]
    if not scored:
        raise NasError(f"scale search: every one of the {len(points)} candidates failed to evaluate")
    best = max(scored, key=lambda p: (p.accuracy, -p.macs))  # max keeps the first of equals: grid order
    return SearchResult(ScaleCoefficients(best.alpha, best.beta, best.gamma), tuple(points), grid, evaluator,
                        dict(options or {}))


# -- files --------------------------------------------------------------------------------------
def family_path(out: str | Path, name: str) -> Path:
    return Path(out) / "families" / f"{name}.yaml"


def write_family(family: Family, out: str | Path) -> Path:
    """Write ``<out>/families/<name>.yaml`` (replacing an older one) and return its path."""
    path = family_path(out, family.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(yaml.safe_dump(_plain(family.to_dict()), sort_keys=False))
    tmp.replace(path)
    log.info("family written to %s", path)
    return path
