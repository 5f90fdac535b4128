"""Ask/tell strategies on any SearchSpace: dedupe, seeding, resume, constraints, objectives."""
from __future__ import annotations

import json
import shutil

import pytest

from nas import strategies
from nas.strategies import ASK_TELL, Objective, Problem, make_strategy
from nas.strategies.random_search import RandomSearch
from search_spaces import CategoricalSpace, load_space
from search_spaces.errors import ConfigError, UnknownNameError

SPACE = CategoricalSpace({"a": [0, 1, 2, 3], "b": [0, 1, 2, 3], "c": [0, 1, 2], "d": ["x", "y"]})


def score(member) -> float:
    return member["a"] + member["b"] + 2 * member["c"] + (member["d"] == "y")


def drive(strategy, budget, log=None):
    keys = []
    for _ in range(budget):
        asked = strategy.ask(1)
        if not asked:
            break
        member = asked[0]
        keys.append(SPACE.key(member))
        strategy.tell(member, {"accuracy": score(member), "status": "ok"})
    return keys


def options(name, tmp_path, stored=False):
    """Optuna keeps its study in memory unless the test is about storage (SQLite costs a commit per
    trial, which only the round trip needs)."""
    return {"storage": f"sqlite:///{tmp_path}/optuna.db"} if name == "optuna" and stored else {}


@pytest.mark.parametrize("name", sorted(ASK_TELL))
def test_finds_good_points_without_repeating(name, tmp_path):
    strategy = make_strategy(name, SPACE, seed=1, **options(name, tmp_path))
    keys = drive(strategy, 60)
    assert len(keys) == len(set(keys)) == 60
    best = max(score(json.loads(k)) for k in keys)
    assert best >= 11  # the optimum is 12; 60 of 96 members is plenty for every strategy


@pytest.mark.parametrize("name", sorted(ASK_TELL))
def test_exhausted_space_returns_fewer(name, tmp_path):
    tiny = CategoricalSpace({"a": [0, 1], "b": [0, 1]})
    strategy = make_strategy(name, tiny, seed=0, **options(name, tmp_path))
    seen = []
    for _ in range(6):
        asked = strategy.ask(1)
        for member in asked:
            seen.append(tiny.key(member))
            strategy.tell(member, {"accuracy": member["a"], "status": "ok"})
    assert sorted(seen) == sorted({tiny.key({"a": a, "b": b}) for a in (0, 1) for b in (0, 1)})
    assert strategy.ask(3) == []


@pytest.mark.parametrize("name", [n if n != "optuna" else pytest.param(n, marks=pytest.mark.integration)
                                  for n in sorted(ASK_TELL)])  # optuna's: an SQLite study, a commit per trial
def test_state_round_trip_continues_identically(name, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = make_strategy(name, SPACE, seed=3, **options(name, tmp_path / "a", stored=True))
    drive(first, 15)
    state = json.loads(json.dumps(first.state_dict()))
    if name == "optuna":  # the resumed strategy reconnects to a copy of the study

        shutil.copy(tmp_path / "a" / "optuna.db", tmp_path / "b" / "optuna.db")
    second = make_strategy(name, SPACE, seed=3, **options(name, tmp_path / "b", stored=True))
    second.load_state_dict(state)
    assert drive(first, 15) == drive(second, 15)


@pytest.mark.parametrize("name", sorted(ASK_TELL))
def test_same_seed_same_asks(name, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = drive(make_strategy(name, SPACE, seed=7, **options(name, tmp_path / "a")), 20)
    b = drive(make_strategy(name, SPACE, seed=7, **options(name, tmp_path / "b")), 20)
    assert a == b


@pytest.mark.parametrize("name", sorted(ASK_TELL))
def test_known_infeasible_members_are_never_proposed(name, tmp_path):
    problem = Problem(constraints={"cost": 4}, estimate=lambda m: {"cost": m["a"] + m["b"]})
    strategy = make_strategy(name, SPACE, problem, seed=0, **options(name, tmp_path))
    for _ in range(30):
        for member in strategy.ask(1):
            assert member["a"] + member["b"] <= 4
            strategy.tell(member, {"accuracy": score(member), "cost": member["a"] + member["b"]})
    assert strategy.rejected > 0


@pytest.mark.parametrize("name", sorted(ASK_TELL))
def test_failed_trials_are_remembered_but_not_parents(name, tmp_path):
    strategy = make_strategy(name, SPACE, seed=0, **options(name, tmp_path))
    keys = []
    for i in range(40):
        member = strategy.ask(1)[0]
        keys.append(SPACE.key(member))
        failed = member["c"] == 2
        strategy.tell(member, {"status": "failed"} if failed else {"accuracy": score(member), "status": "ok"})
    assert len(set(keys)) == 40
    if name == "evolution":
        assert all(json.loads(m["key"])["c"] != 2 for m in strategy.population)


def test_multi_objective_evolution_keeps_the_front():
    problem = Problem(objectives=(Objective("accuracy", "max"), Objective("latency_ms", "min")))
    strategy = make_strategy("evolution", SPACE, problem, seed=0)
    for _ in range(60):
        member = strategy.ask(1)[0]
        strategy.tell(member, {"accuracy": score(member), "latency_ms": member["a"] * 2 + member["c"]})
    values = [tuple(m["values"]) for m in strategy.population]
    front = [v for v in values if not any(o[0] >= v[0] and o[1] >= v[1] and o != v for o in values)]
    # Accuracy is maximised and latency minimised: the cheapest-best corner must be found.
    assert any(v[1] == 0 for v in front) and len(front) >= 2


def test_works_on_architecture_spaces():
    space = load_space("nasbench_macro")
    strategy = make_strategy("evolution", space, seed=0)
    keys = []
    for _ in range(30):
        arch = strategy.ask(1)[0]
        keys.append(space.key(arch))
        strategy.tell(arch, {"accuracy": space.code(arch).count("2"), "status": "ok"})
    assert len(set(keys)) == 30


def test_unknown_strategy_and_options_are_one_line_errors():
    with pytest.raises(UnknownNameError, match="did you mean evolution"):
        make_strategy("evolutoin", SPACE)
    with pytest.raises(ConfigError, match="did you mean population"):
        make_strategy("evolution", SPACE, populaton=10)
    with pytest.raises(ConfigError, match="population: expected int"):
        make_strategy("evolution", SPACE, population="ten")
    with pytest.raises(ConfigError, match="sampler: unknown sampler 'tpx'"):
        make_strategy("optuna", SPACE, sampler="tpx")


def test_a_strategy_registered_with_one_call_is_made_by_name_and_joins_the_contract(monkeypatch):
    with strategies.STRATEGIES.scratch(), strategies.ASK_TELL.scratch():
        @strategies.register
        class Mine(RandomSearch):
            name = "mine"

        assert strategies.ASK_TELL["mine"] is Mine and strategies.STRATEGIES["mine"] is Mine
        keys = drive(make_strategy("mine", SPACE, seed=0), 20)
        assert len(set(keys)) == 20
        with pytest.raises(ValueError, match="strategy 'mine' is registered already"):
            strategies.register(Mine)
        with pytest.raises(TypeError, match="is not a Strategy subclass"):
            strategies.register(dict)  # type: ignore[arg-type]
    assert "mine" not in strategies.STRATEGIES and "mine" not in strategies.ASK_TELL
