"""Hand-designed baselines of a run: from ``baselines=auto|none|[...]`` to names, keys and
architectures, and which of them a constraint refuses before training."""
from __future__ import annotations

import random
from collections.abc import Collection
from dataclasses import replace
from typing import Any

from nas.run.trial import Baseline
from nas.strategies.base import Problem
from search_spaces import zoo
from search_spaces.arch import Architecture
from search_spaces.errors import ConfigError, NasError
from search_spaces.space import SearchSpace


def refuse_infeasible(baseline: Baseline, problem: Problem, exempt: Collection[str] = ()) -> Baseline:
    """The baseline, marked refused when its costs known before training break a constraint (other
    than those on ``exempt`` metrics: the baseline whose latency is the bound meets it by definition,
    whatever a second timing or a predictor would say)."""
    bounds = {m: b for m, b in problem.constraints.items() if m not in exempt}
    if problem.estimate is None or not bounds:
        return baseline
    known = problem.estimate(baseline.arch)
    broken = [f"{m} {known[m]:.4g} > {b:g}" for m, b in bounds.items()
              if isinstance(known.get(m), (int, float)) and known[m] > b]
    return replace(baseline, refused="breaks " + ", ".join(broken)) if broken else baseline


def resolve_baselines(spec: Any, space: SearchSpace) -> list[Baseline]:
    """Each baseline's name, key and architecture: ``auto`` (the space's own references), ``none``, or
    a list of reference names, architecture strings or members of the space."""
    if spec in (None, "none", "auto") or spec == []:
        if spec != "auto":
            return []
        spec = list(getattr(space, "baselines", ()))
    elif isinstance(spec, str):
        spec = [spec]
    if not isinstance(spec, (list, tuple)) or not all(isinstance(s, str) for s in spec):
        raise ConfigError(f"baselines: expected auto, none or a list of reference names / architecture "
                          f"strings, got {spec!r}")
    builds = isinstance(space.sample(random.Random(0)), Architecture)
    out: dict[str, Baseline] = {}
    for text in spec:
        arch = None
        try:
            arch = space.from_string(text)
        except Exception:  # noqa: BLE001 - not a member's string: a reference name or any network
            if builds and text in zoo.names():
                arch = zoo.reference(text)
            elif builds and ":" in text:
                try:
                    arch = Architecture.parse(text)
                except NasError as exc:
                    raise ConfigError(f"baselines: {text!r} is not an architecture ({exc})") from None
        if arch is None:
            allowed = "members of the space" + (f" or reference names ({', '.join(zoo.names())})"
                                                 if builds else "")
            raise ConfigError(f"baselines: {text!r} is not a baseline of space {space.name}; "
                              f"use auto, none or {allowed}")
        try:
            key = space.key(arch)
        except Exception:  # noqa: BLE001 - a network outside the space keeps its own string
            key = str(arch)
        name = text if text in zoo.names() or ":" not in text else f"baseline {len(out) + 1}"
        out.setdefault(key, Baseline(name, key, arch))
    return list(out.values())
