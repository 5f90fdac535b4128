"""The rules a run states once: the winner (nas.run.problem.winner, behind best.yaml, the progress
bar and progress.png), the Pareto front (nas.strategies.pareto) and the budget check."""
from __future__ import annotations

import math

import numpy as np
import pytest

from nas.run.problem import winner
from nas.run.runner import check_budgets
from nas.strategies.pareto import nondominated_ranks, pareto_mask
from search_spaces.errors import ConfigError


def test_the_winner_is_the_best_feasible_mean_among_the_most_repeated():
    # n, signed means, violations of four architectures in order of first evaluation
    assert winner([1, 1, 1], [0.5, 0.9, 0.7], [0, 0, 0]) == 1
    assert winner([1, 1, 1], [0.5, 0.9, 0.7], [0, 0.2, 0]) == 2  # infeasible means never win
    assert winner([3, 1, 3], [0.5, 0.9, 0.7], [0, 0, 0], min_repeats=3) == 2  # a lucky single draw does not
    assert winner([2, 1, 2], [0.5, 0.9, 0.7], [0, 0, 0], min_repeats=3) == 2  # the most repeats up to 3
    assert winner([1, 1], [0.7, 0.7], [0, 0]) == 0  # the earliest wins a tie
    assert winner([0, 1], [math.nan, 0.1], [0, 0]) == 1  # an architecture without a value is no candidate


def test_with_none_feasible_there_is_no_winner_unless_the_least_infeasible_are_asked_for():
    assert winner([1, 1], [0.9, 0.5], [0.3, 0.1]) is None
    assert winner([1, 1], [0.9, 0.5], [0.3, 0.1], least_infeasible=True) == 1
    assert winner([], [], []) is None and winner([], [], [], least_infeasible=True) is None


def test_the_pareto_front_is_the_first_nondominated_rank():
    points = np.random.default_rng(0).integers(0, 4, size=(40, 2)).astype(float)  # ties and duplicates
    mask = pareto_mask(points)
    dominated = [any((q >= p).all() and (q > p).any() for q in points) for p in points]
    assert mask.tolist() == [not d for d in dominated]
    assert (mask == (np.asarray(nondominated_ranks([tuple(p) for p in points])) == 0)).all()
    assert pareto_mask(np.zeros((0, 2))).tolist() == []


@pytest.mark.parametrize(("budget", "hours", "message"), [
    (None, None, "a run needs a budget"),
    (0, None, "budget: must be >= 1 evaluation"),
    (2.5, None, "budget: expected int"),
    (True, None, "budget: expected int"),
    (None, 0, "budget_hours: must be a number > 0"),
    (None, math.inf, "budget_hours: must be a number > 0"),
])
def test_budgets_are_checked_once_for_the_api_and_a_run(budget, hours, message):
    with pytest.raises(ConfigError, match=message):
        check_budgets(budget, hours)
    assert check_budgets(5, None) == (5, None) and check_budgets(None, 1) == (None, 1.0)
