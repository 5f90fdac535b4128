"""Selection: the leading candidates are evaluated again, and the winner is the best mean.

One evaluation of a network is one draw of a noisy process (a training seed). A search that
reports its single highest draw reports the luckiest network, not the best one. Two ways to
confirm the leaders, both counted against the evaluation budget:

- ``race`` (the default), intensification as in SMAC: throughout the search, whenever one of the
  ``top`` candidates by mean has fewer than ``repeats`` evaluations, it is evaluated again before
  the strategy proposes anything new, and the strategy is told its running mean
  (``Strategy.retell``), so a lucky draw stops steering the search. It starts once ``start`` of
  the budget has gone to new candidates (at least ``2 * top`` of them): early evaluations are
  worth more to the search than to confirmation.
- ``halving``, a final stage: before the budget ends, the top ``k`` candidates by mean go through
  successive halving over repeats: rung 1 brings all ``k`` to 2 evaluations, rung 2 the best
  ``ceil(k / eta)`` of them to 3, and so on to ``repeats``. Its cost is reserved from the budget.

Either way the winner is the best mean among the candidates with ``repeats`` evaluations (the most
evaluated ones when none has that many). An evaluator that gives the same result every time
(``noisy = False``) is never repeated.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from search_spaces.checks import check_int
from search_spaces.errors import ConfigError, describe_choices, unknown

METHODS = ("race", "halving", "none")


@dataclass(frozen=True)
class SelectSettings:
    """The run's ``select.*`` settings as typed (checked by ``Selection.from_options``)."""

    name: str = field(default="race", metadata={"shown": "select=race", "help": "race | halving | none"})
    top: int = field(default=3, metadata={"help": "race: candidates kept at select.repeats evaluations"})
    repeats: int = field(default=3, metadata={"help": "evaluations of each confirmed candidate"})
    start: float = field(default=0.3, metadata={"help": "race: the share of the budget spent before it starts"})
    k: int = field(default=8, metadata={"help": "halving: candidates in its first rung"})
    eta: int = field(default=2, metadata={"help": "halving: each rung keeps the best 1/eta"})


SELECT_DEFAULTS: dict[str, Any] = asdict(SelectSettings())


def _positive_int(key: str, value: Any, minimum: int) -> int:
    check_int(f"select.{key}", value, minimum)
    return value


@dataclass(frozen=True)
class Selection:
    """How the winner is confirmed: ``race`` keeps the ``top`` candidates at ``repeats``
    evaluations during the search; ``halving`` runs successive halving over the top ``k`` at its
    end."""

    method: str = "race"
    top: int = 3  # race: candidates kept confirmed
    repeats: int = 3  # evaluations of a confirmed candidate
    start: float = 0.3  # race: share of the budget spent on new candidates before racing begins
    k: int = 8  # halving: candidates entering the first rung
    eta: int = 2  # halving: each rung keeps the best 1/eta

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | str | None) -> Selection:
        """The ``select`` group of a run (``select=none``, ``select.k=8``...), checked."""
        if options is None:
            options = {}
        if isinstance(options, str):
            options = {"name": options}
        given = dict(options)
        extra = sorted(set(given) - set(SELECT_DEFAULTS))
        if extra:
            raise ConfigError(describe_choices("select option", extra[0],
                                               [f"select.{k}" for k in SELECT_DEFAULTS if k != "name"]))
        merged = {**SELECT_DEFAULTS, **given}
        method = merged["name"]
        if method not in METHODS:
            raise unknown("select", method, METHODS)
        start = merged["start"]
        if isinstance(start, bool) or not isinstance(start, (int, float)) or not 0 <= start < 1:
            raise ConfigError(f"select.start: must be a number in [0, 1), got {start!r}")
        return cls(method=method, top=_positive_int("top", merged["top"], 1),
                   repeats=_positive_int("repeats", merged["repeats"], 1), start=float(start),
                   k=_positive_int("k", merged["k"], 2), eta=_positive_int("eta", merged["eta"], 2))

    @property
    def active(self) -> bool:
        return self.method != "none" and self.repeats > 1

    @property
    def racing(self) -> bool:
        return self.active and self.method == "race"

    def race_start(self, budget: int | None) -> int:
        """Candidates evaluated before racing begins: ``start`` of the budget, at least
        ``2 * top``. Early evaluations are worth more to the search than to confirmation."""
        return max(2 * self.top, math.ceil(self.start * budget) if budget else 0)

    def rungs(self, k: int | None = None) -> list[tuple[int, int]]:
        """(members, evaluations each) per rung of the final stage for ``k`` candidates; [] when
        none runs. Racing ends with one rung that confirms the ``top`` with what budget is left
        (a search that ran out of proposals early, such as DARTS' few derived networks)."""
        k = self.k if k is None else k
        if not self.active or k < 1 or (self.method == "halving" and k < 2):
            return []
        if self.method == "race":
            return [(min(self.top, k), self.repeats)]
        return [(math.ceil(k / self.eta ** i), i + 2) for i in range(self.repeats - 1)]

    def cost(self, k: int | None = None) -> int:
        """Evaluations the final stage adds at most (members that already have enough cost
        nothing)."""
        return sum(members * (repeats - 1) if self.method == "race" else members
                   for members, repeats in self.rungs(k))

    def reserve(self, k: int) -> int:
        """Evaluations kept back from the search for the final stage: halving's cost; racing
        confirms as it goes and reserves nothing."""
        return self.cost(k) if self.method == "halving" else 0

    def fitted(self, budget: int | None) -> Selection:
        """The final stage shrunk to take at most half of ``budget`` (none below 2 candidates)."""
        if budget is None or self.method != "halving" or not self.active:
            return self
        k = self.k
        while k >= 2 and self.cost(k) > budget // 2:
            k -= 1
        return replace(self, k=k) if k >= 2 else Selection("none")

    @property
    def winner_repeats(self) -> int:
        """Evaluations a finalist has: the winner is chosen among candidates with this many."""
        return self.repeats if self.active else 1

    def baseline_repeats(self, budget: int | None) -> int:
        """Evaluations of each baseline: as many as a finalist of a run of ``budget`` will have
        (once when the budget is too small for any repeat)."""
        if not self.active:
            return 1
        if self.racing and budget is not None and budget <= self.race_start(budget):
            return 1
        return self.repeats


def rank(candidates: Mapping[str, tuple[float, float]], members: list[str] | None = None) -> list[str]:
    """Keys best first by (constraint violation, -mean); ``candidates``: key -> (violation, mean)
    with means already signed so that larger is better. Ties keep the given order."""
    keys = list(candidates) if members is None else [k for k in members if k in candidates]
    return sorted(keys, key=lambda key: (candidates[key][0], -candidates[key][1]))
