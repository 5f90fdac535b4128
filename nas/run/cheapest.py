"""Bounds no member of the space can meet, refused before a run writes anything.

A run whose ``max_params`` is below the space's smallest member would refuse every proposal
before training and end with nothing evaluated; knowing the space's cheapest member turns that
into one line at the start. Params and MACs are exact (``search_spaces.cost``); latency comes from
the run's own latency source, so the check agrees with what the run would have refused.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

from search_spaces.arch import Architecture
from search_spaces.cost import cost
from search_spaces.errors import ConfigError
from search_spaces.macro import MacroSpace, extreme_member
from search_spaces.space import SearchSpace

log = logging.getLogger(__name__)

# A measured latency varies from one timing to the next and the MACs-smallest member only stands in
# for the fastest one: a measured bound is refused only when it is below this share of that member's
# latency, so that a bound some member could meet is never refused for noise.
MEASURED_SLACK = 0.5
SEEDS = (0, 1, 2)  # coordinate searches from several starts: the smallest found is the cheapest


def _smallest(space: Any, measure: Callable[[Architecture], float]) -> tuple[Architecture, float]:
    """The member with the least ``measure`` found by coordinate search (several starts)."""
    found = [extreme_member(space, measure, largest=False, seed=seed) for seed in SEEDS]
    values = [measure(arch) for arch in found]
    i = min(range(len(found)), key=values.__getitem__)
    return found[i], values[i]


def check_reachable(constraints: Mapping[str, float], space: SearchSpace, num_classes: int,
                    latency: Mapping[str, Any], labels: Mapping[str, str] | None = None) -> None:
    """ConfigError when a bound on params, MACs or latency is below what the space's cheapest member
    reaches. ``latency``: metric -> the LatencySource that times it in this run (absent: not checked);
    ``labels``: metric -> the setting the user typed (``max_params``; ``constraints.<metric>``
    otherwise). Only YAML (macro) spaces are checked: their members are Architectures with known costs."""
    if not isinstance(space, MacroSpace):
        return
    labels = dict(labels or {})
    bounds = {m: b for m, b in constraints.items() if not math.isinf(b)}
    if not bounds:
        return
    for metric, unit in (("params", "params"), ("macs", "MACs")):
        if metric not in bounds:
            continue
        _, least = _smallest(space, lambda a, m=metric: getattr(cost(a, num_classes), m))
        if bounds[metric] < least:
            label = labels.get(metric, f"constraints.{metric}")
            raise ConfigError(f"{label}: {bounds[metric]:,.10g} is below the smallest "
                              f"member of {space.name} ({int(least):,} {unit}); nothing could be evaluated")
    for metric in ("latency_ms", "latency_int8_ms"):
        source = latency.get(metric)
        if metric not in bounds or source is None:
            continue
        label = labels.get(metric, f"constraints.{metric}")
        if source.source == "measured":
            # Finding the fastest member would time hundreds of networks: the MACs-smallest one
            # stands in for it, timed once (memoised: the run reuses the number if it proposes it).
            arch, _ = _smallest(space, lambda a: cost(a, num_classes).macs)
            fastest, how = source(arch), "measured for its smallest-MACs member"
            limit = fastest * MEASURED_SLACK
        else:
            # A profile's prediction costs microseconds: search the space on it directly.
            by_macs, _ = _smallest(space, lambda a: cost(a, num_classes).macs)
            _, fastest = _smallest(space, source)
            fastest = min(fastest, source(by_macs))
            how, limit = f"as the {source.source} latency profile predicts it", fastest
        log.info("%s: fastest member of %s %.4g ms (%s)", label, space.name, fastest, how)
        if bounds[metric] < limit:
            raise ConfigError(f"{label}: {bounds[metric]:g} ms is below the fastest member of {space.name} "
                              f"({fastest:.3g} ms, {how}); nothing could be evaluated")
