"""The Fashion-MNIST ground truth as a landscape for the strategies' defaults
(benchmarks/landscapes.py ``fashion``): only members with every seed of the recipe's length count, a
noisy draw reads one stored training, and a search runs on it."""
from __future__ import annotations

import sys

import pandas as pd
import pytest

import nas
from tests.paths import BENCHMARKS

sys.path.insert(0, str(BENCHMARKS))
import ground_truth as gt
import landscapes


@pytest.fixture
def table(tmp_path):
    recipe = gt.load_recipe()
    rid, epochs = gt.recipe_id(recipe), recipe["recipe"]["epochs"]
    rows = []
    for i, (name, accs) in enumerate({"m0": (80.0, 81.0), "m1": (83.0, 84.0), "m2": (82.0, 82.5)}.items()):
        rows += [{"role": "member", "name": name, "arch": f"a{i}", "seed": s, "epochs": epochs,
                  "test_accuracy": acc, "recipe": rid} for s, acc in enumerate(accs)]
    rows += [
        {"role": "member", "name": "one_seed", "arch": "a9", "seed": 0, "epochs": epochs, "test_accuracy": 99.0,
         "recipe": rid},
        {"role": "doubling", "name": "m0", "arch": "a0", "seed": 0, "epochs": 2 * epochs, "test_accuracy": 99.0,
         "recipe": rid},
        {"role": "baseline", "name": "b", "arch": "b", "seed": 0, "epochs": epochs, "test_accuracy": 99.0,
         "recipe": rid},
        {"role": "baseline", "name": "b", "arch": "b", "seed": 1, "epochs": epochs, "test_accuracy": 99.0,
         "recipe": rid},
        {"role": "member", "name": "old", "arch": "a8", "seed": 0, "epochs": epochs, "test_accuracy": 99.0,
         "recipe": "0000000a"},
        {"role": "member", "name": "old", "arch": "a8", "seed": 1, "epochs": epochs, "test_accuracy": 99.0,
         "recipe": "0000000a"},
    ]
    path = tmp_path / "truth.csv"
    pd.DataFrame(rows, columns=gt.COLUMNS).to_csv(path, index=False)
    return path


def test_only_members_with_every_seed_at_the_recipes_length_count(table):
    land = landscapes.fashion(table)
    assert sorted(land.space.choices()["member"]) == ["m0", "m1", "m2"]
    assert land.best == pytest.approx(83.5)
    assert land.meta == {"members": 3, "of": gt.load_recipe()["members"]["count"], "complete": False}
    m1 = land.space.from_string(land.space.key({"member": "m1"}))
    draws = {land.evaluator(True, seed)(m1, repeat=r)["accuracy"] for seed in range(4) for r in range(2)}
    assert draws == {83.0, 84.0}  # one stored training per draw, never a mean
    assert land.evaluator(False)(m1) == {"accuracy": 83.5}


def test_a_search_runs_on_it_and_names_a_member(table):
    land = landscapes.fashion(table)
    result = nas.search(land.space, strategy="evolution", evaluator=land.evaluator(True, 0), budget=6, seed=0,
                        out=None, progress=False, baselines="none", latency="none")
    assert land.space.to_choices(land.space.from_string(result.best["arch"]))["member"] in {"m0", "m1", "m2"}


def test_too_few_members_is_a_table_error(tmp_path):
    pd.DataFrame(columns=gt.COLUMNS).to_csv(tmp_path / "empty.csv", index=False)
    with pytest.raises(landscapes.TableError, match="0 members have every seed"):
        landscapes.fashion(tmp_path / "empty.csv")
