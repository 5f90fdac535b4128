"""Regularized (aging) evolution, single- or multi-objective, with feasibility-first selection.

Real et al. 2019: keep a population of the most recent evaluations; each child is a mutation of the
winner of a random tournament, and the oldest member dies. Three changes make it spend a small
budget better without tuning for any one space:

- **no wasted evaluations**: a mutation whose network was already seen is retried (on the same
  parent, then on other tournament winners) before falling back to a random member;
- **a small random start**: 8 random members, not the full population, so selection starts working
  early even in a budget of tens of evaluations;
- **strong but aged selection**: tournaments of half the population pick near-best parents, while
  aging still retires old members, so the search does not freeze on one early winner;
- **crossover** of two tournament winners (then mutated) with probability ``crossover_prob``: in
  spaces whose per-stage choices contribute largely independently, it joins good choices found in
  different members.

Defaults were chosen on those principles and checked on NAS-Bench-Macro
(``benchmarks/search_quality.py``).

With two or three objectives the tournament ranks by non-dominated front and crowding distance
(NSGA-II) within the population. Constraint violations rank below every feasible member, smaller
violations first.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from nas.strategies.base import Strategy
from nas.strategies.pareto import crowding, nondominated_ranks
from search_spaces.checks import check_int
from search_spaces.errors import ConfigError

# Random members before evolving unless ``initial`` says otherwise (at most the population): eight
# whatever the space's size, as one per dimension would make the random start the whole search of
# a small budget (mbconv has 30 dimensions, the default run 20 evaluations).
INITIAL = 8


class RegularizedEvolution(Strategy):
    """Aging evolution over any SearchSpace (see the module docstring for the design)."""

    name = "evolution"
    option_help: ClassVar[Mapping[str, str]] = {
        "population": "members kept alive (the oldest dies when a child is added)",
        "sample_size": "tournament size: larger exploits more",
        "initial": f"random members before evolving (default: {INITIAL})",
        "crossover_prob": "chance a child is a crossover of two winners, then mutated",
        "max_tries": "mutation retries to find an unseen, feasible child",
    }

    def __init__(
        self,
        space,
        problem=None,
        seed: int = 0,
        population: int = 32,
        sample_size: int = 16,
        initial: int | None = None,
        crossover_prob: float = 0.75,
        max_tries: int = 50,
    ) -> None:
        super().__init__(space, problem, seed)
        if population < 2 or not 1 <= sample_size <= population:
            raise ValueError("need population >= 2 and 1 <= sample_size <= population")
        check_int("initial", initial, 1, allow_none=True)
        check_int("max_tries", max_tries, 1)
        if not 0 <= crossover_prob <= 1:  # also NaN
            raise ConfigError(f"crossover_prob: must be a probability in [0, 1], got {crossover_prob!r}")
        self.population_size = population
        self.sample_size = sample_size
        self.initial = initial if initial is not None else min(population, INITIAL)
        self.crossover_prob = crossover_prob
        self.max_tries = max_tries
        self.population: list[dict[str, Any]] = []  # oldest first: {key, values, violation}
        self.told = 0
        self._members: dict[str, Any] = {}  # key -> architecture of the living population

    # -- selection -----------------------------------------------------------------------------
    def _ranking(self) -> list[tuple]:
        """A sort key per population member: larger is better."""
        pop = self.population
        if len(self.problem.objectives) == 1:
            return [(-m["violation"], m["values"][0]) for m in pop]
        points = [tuple(m["values"]) for m in pop]
        feasible = [m["violation"] == 0 for m in pop]
        ranks = nondominated_ranks(points)
        dist = crowding(points, ranks)
        return [(f, -m["violation"], -r, d) for f, m, r, d in zip(feasible, pop, ranks, dist)]

    def _tournament(self, ranking: list[tuple]) -> Any:
        picks = self.rng.sample(range(len(self.population)), min(self.sample_size, len(self.population)))
        best = max(picks, key=lambda i: ranking[i])
        key = self.population[best]["key"]
        if key not in self._members:  # after a resume: members come back from their strings
            self._members[key] = self.space.from_string(key)
        return self._members[key]

    def _child(self, ranking: list[tuple]) -> Any | None:
        for _ in range(3):  # a few parents before giving up on evolution for this proposal
            parent = self._tournament(ranking)
            if len(self.population) > 1 and self.rng.random() < self.crossover_prob:
                parent = self.space.crossover(parent, self._tournament(ranking), self.rng)
            for _ in range(self.max_tries):
                child = self.space.mutate(parent, self.rng)
                if self._claim(child):
                    return child
        return None

    # -- ask / tell ----------------------------------------------------------------------------
    def ask(self, n: int = 1) -> list[Any]:
        out: list[Any] = []
        ranking = self._ranking() if len(self.population) >= 2 else []
        for _ in range(n):
            child = None
            if ranking and self.told + len(out) >= self.initial:
                child = self._child(ranking)
            tries = 0
            while child is None and tries < self.max_tries * 20:
                tries += 1
                candidate = self.space.sample(self.rng)
                if self._claim(candidate):
                    child = candidate
            if child is None:
                break  # the space is exhausted (or everything left is infeasible)
            out.append(child)
        return out

    def tell(self, arch: Any, metrics: Mapping[str, Any]) -> None:
        key = self.space.key(arch)
        self.seen.add(key)
        self.told += 1
        values = self.objective_values(metrics)
        if metrics.get("status", "ok") != "ok" or values is None:
            return  # remembered as seen, but a failed network is no parent
        self.population.append({"key": key, "values": list(values), "violation": self.problem.violation(metrics)})
        # The canonical member (as a resumed run would parse it), so mutation sees the same value.
        self._members[key] = arch if str(arch) == key else self.space.from_string(key)
        if len(self.population) > self.population_size:
            self._members.pop(self.population.pop(0)["key"], None)

    def retell(self, arch: Any, metrics: Mapping[str, Any]) -> None:
        """Score a living member by its running mean: a lucky first draw stops winning tournaments
        once a repeat shows it was luck."""
        key = self.space.key(arch)
        values = self.objective_values(metrics)
        if values is None:
            return
        for member in self.population:
            if member["key"] == key:
                member["values"] = list(values)
                member["violation"] = self.problem.violation(metrics)

    def state_dict(self) -> dict[str, Any]:
        return {**self._base_state(), "population": self.population, "told": self.told}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._load_base_state(state)
        self.population = [dict(m) for m in state["population"]]
        self._members = {}
        self.told = state["told"]
