"""Repeats, the selection stage, baselines and in-memory runs: the winner is the best mean."""
from __future__ import annotations

import hashlib
import os
import random

import pandas as pd
import pytest

import nas
from evaluators.proxy import ProxyEvaluator, arch_seed
from evaluators.tabular import NasBenchMacro
from nas.cli.commands import main
from nas.select.baselines import resolve_baselines
from nas.select.selection import Selection
from search_spaces.errors import ConfigError, NasError
from search_spaces.space import CategoricalSpace

SPACE = {"a": list(range(6)), "b": list(range(6)), "c": list(range(4))}


def _true(arch) -> float:
    """A smooth landscape: the best member is a=5, b=5, c=3."""
    return 50.0 + 4 * arch["a"] + 3 * arch["b"] + 2 * arch["c"]


def _noise(arch, repeat: int) -> float:
    """A reproducible draw per (member, repeat), sd about 3 points."""
    text = f"{sorted(arch.items())}:{repeat}".encode()
    return random.Random(hashlib.sha256(text).hexdigest()).gauss(0.0, 3.0)


def noisy(arch, repeat=0):
    return {"accuracy": _true(arch) + _noise(arch, repeat)}


def clean(arch):
    return {"accuracy": _true(arch)}


def search(**kw):
    kw.setdefault("budget", 40)
    kw.setdefault("out", None)
    kw.setdefault("progress", False)
    return nas.search(CategoricalSpace(SPACE), **kw)


# -- repeats -----------------------------------------------------------------------------------------
def test_proxy_repeats_train_from_distinct_seeds_and_are_reproducible():
    key = "mbconv@32:stem_k3_s2_c8:mb_k3_e1_c8:head_c16"
    seeds = {arch_seed(0, key, r) for r in range(4)}
    assert len(seeds) == 4 and arch_seed(0, key) == arch_seed(0, key, 0)
    proxy = ProxyEvaluator(steps=2, batch_size=16, resolution=16, threads=1)
    arch = "tiny@32_relu:stem_k3_s2_c8:mb_k3_e1_c8:head_c16"
    first, again, other = proxy(arch, repeat=1), proxy(arch, repeat=1), proxy(arch, repeat=0)
    assert first["train_loss"] == again["train_loss"] and first["accuracy"] == again["accuracy"]
    assert first["train_loss"] != other["train_loss"]


def test_nasbench_macro_noisy_repeats_read_each_stored_run_once(table_path, table):
    space = nas.load_space("nasbench_macro")
    arch = space.from_code("22212220") if hasattr(space, "from_code") else space.arch_from_key("22212220")
    noisy_bench = NasBenchMacro(table_path, noisy=True, seed=3)
    draws = [noisy_bench(arch, repeat=r)["accuracy"] for r in range(3)]
    stored = table["22212220"]["test_acc"]
    assert sorted(draws) == pytest.approx(sorted(stored))
    assert sum(draws) / 3 == pytest.approx(table["22212220"]["mean_acc"], abs=1e-4)
    assert noisy_bench(arch, repeat=3)["accuracy"] == draws[0]  # the cycle starts again
    clean_bench = NasBenchMacro(table_path)
    assert not clean_bench.noisy and noisy_bench.noisy
    assert {clean_bench(arch, repeat=r)["accuracy"] for r in range(3)} == {table["22212220"]["mean_acc"]}


def test_repeats_count_against_the_budget_and_are_recorded():
    result = search(evaluator=noisy, strategy="evolution", seed=1)
    trials = result.trials
    assert len(trials) == 40
    repeats = trials[trials["repeat"] > 0]
    assert len(repeats) and set(repeats["stage"]) == {"select"}
    # each (arch, repeat) is evaluated once, and repeat numbers count up per arch
    assert not trials.duplicated(["arch", "repeat"]).any()
    for _, group in trials.groupby("arch"):
        assert sorted(group["repeat"]) == list(range(len(group)))
    archs = result.archs
    confirmed = archs[archs["n"] == 3]
    assert len(confirmed) >= 1 and confirmed["accuracy_std"].notna().all()


def test_the_same_seed_gives_the_same_trials_repeats_included():
    first = search(evaluator=noisy, strategy="optuna", seed=4)
    second = search(evaluator=noisy, strategy="optuna", seed=4)
    columns = ["arch", "repeat", "stage", "accuracy"]
    pd.testing.assert_frame_equal(first.trials[columns], second.trials[columns])


def test_a_callable_without_repeat_is_never_repeated():
    result = search(evaluator=clean, strategy="evolution", seed=0)
    assert (result.trials["repeat"] == 0).all() and result.trials["arch"].is_unique
    assert result.best["n"] == 1


def test_select_none_gives_the_single_best_draw():
    result = search(evaluator=noisy, strategy="random", seed=2, select="none")
    assert (result.trials["repeat"] == 0).all()
    assert result.best["accuracy"] == result.trials["accuracy"].max()


# -- the winner ----------------------------------------------------------------------------------------
def lucky(arch, repeat=0):
    """Member a=0,b=0,c=0 draws 100 once, then 40s; a=1,b=1,c=1 draws 90 every time."""
    if (arch["a"], arch["b"], arch["c"]) == (0, 0, 0):
        return {"accuracy": 100.0 if repeat == 0 else 40.0}
    if (arch["a"], arch["b"], arch["c"]) == (1, 1, 1):
        return {"accuracy": 90.0}
    return {"accuracy": 50.0 + arch["a"]}


@pytest.mark.parametrize("select", ["race", "halving"])
def test_the_winner_is_chosen_by_its_mean_not_a_lucky_draw(select):
    space = CategoricalSpace({"a": [0, 1, 2], "b": [0, 1], "c": [0, 1]})
    result = nas.search(space, evaluator=lucky, strategy="random", budget=20, seed=0, out=None,
                        progress=False, select={"name": select, "k": 4})
    assert result.trials["accuracy"].max() == 100.0  # the lucky draw happened
    best = result.best
    assert best["accuracy"] == 90.0 and best["n"] == 3
    assert space.from_string(best["arch"]) == {"a": 1, "b": 1, "c": 1}


def test_halving_reserves_its_cost_and_runs_at_the_end():
    result = search(evaluator=noisy, strategy="evolution", seed=3, select={"name": "halving", "k": 6, "eta": 2})
    stages = list(result.trials["stage"])
    first_select = stages.index("select")
    assert set(stages[first_select:]) == {"select"} and len(stages) == 40
    assert Selection("halving", k=6, eta=2).cost() == 6 + 3
    assert len(stages) - first_select <= 9
    assert Selection("halving", k=8).fitted(10).k == 3  # at most half the budget: 3 + 2 <= 5


def test_baselines_are_evaluated_like_finalists_and_never_win(tmp_path):
    space = CategoricalSpace(SPACE)
    top = space.from_choices({"a": 5, "b": 5, "c": 3})
    text = space.to_string(top)

    def rigged(arch, repeat=0):
        # The baseline (the best member) scores far above anything else.
        return {"accuracy": 200.0 if arch == top else noisy(arch, repeat)["accuracy"]}

    result = nas.search(space, evaluator=rigged, strategy="random", budget=12, seed=5, out=str(tmp_path),
                        baselines=[text], progress=False, select="none")
    rows = result.trials[result.trials["stage"] == "baseline"]
    assert len(rows) == 1 and (rows["accuracy"] == 200.0).all()  # select=none: one evaluation
    assert result.best["arch"] != space.key(top)
    assert result.summary["baselines"][0]["difference"] < 0
    leaderboard = nas.leaderboard(tmp_path)
    assert (leaderboard.loc[leaderboard["arch"] == space.key(top), "stage"] == "baseline").all()


def test_auto_baselines_of_mbconv_and_their_repeats(tmp_path):
    (b0,) = resolve_baselines("auto", nas.load_space("mbconv"))
    assert b0.name == "efficientnet_b0" and b0.key.startswith("mbconv@224")
    assert resolve_baselines("none", nas.load_space("mbconv")) == []
    assert resolve_baselines("auto", nas.load_space("nasbench_macro")) == []
    (r18, r50) = resolve_baselines("auto", nas.load_space("resnet"))
    assert (r18.name, r50.name) == ("resnet18", "resnet50")


# -- resume during selection -----------------------------------------------------------------------------
class Crash(BaseException):
    """Stands for the process dying mid-evaluation (never caught as an evaluation failure)."""


def crashing(after: int):
    """``noisy``, but the process "dies" in its ``after``-th repeat (a selection evaluation)."""
    calls = {"n": 0}

    def evaluate(arch, repeat=0):
        calls["n"] += repeat > 0
        if repeat > 0 and calls["n"] == after:
            raise Crash
        return noisy(arch, repeat)

    return evaluate


@pytest.mark.integration
@pytest.mark.parametrize("strategy,select", [("evolution", "race"), ("optuna", "race"), ("evolution", "halving")])
def test_a_run_killed_in_the_selection_stage_resumes_to_the_uninterrupted_trials(tmp_path, strategy, select):
    kw = {"strategy": strategy, "seed": 7, "budget": 40, "progress": False,
          "select": {"name": select, "k": 6}}
    whole = search(evaluator=noisy, **kw)
    with pytest.raises(Crash):
        nas.search(CategoricalSpace(SPACE), evaluator=crashing(3), out=str(tmp_path), run_id="r", **kw)
    cut = pd.read_csv(tmp_path / "runs" / "r" / "trials.csv")
    assert (cut["stage"] == "select").sum() == 2 and len(cut) < 40  # died in its third repeat
    resumed = nas.search(CategoricalSpace(SPACE), evaluator=noisy, out=str(tmp_path), run_id="r",
                         resume=True, **kw)
    columns = ["arch", "repeat", "stage", "accuracy"]
    pd.testing.assert_frame_equal(resumed.trials[columns].reset_index(drop=True),
                                  whole.trials[columns].reset_index(drop=True))
    assert resumed.best["arch"] == whole.best["arch"]


# -- in memory -----------------------------------------------------------------------------------------------
def test_out_none_keeps_the_run_in_memory_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = search(evaluator=noisy, strategy="optuna", seed=0, out=None)
    assert result.run_dir is None and len(result.trials) == 40 and result.best is not None
    assert os.listdir(tmp_path) == []
    with pytest.raises(ConfigError, match="out=None"):
        search(evaluator=noisy, out=None, resume=True)


# -- bad settings ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("setting,needle", [
    ("select=fastest", "select"),
    ("select.top=0", "select.top"),
    ("select.repeats=0", "select.repeats"),
    ("select.k=1", "select.k"),
    ("select.eta=1", "select.eta"),
    ("select.start=1.5", "select.start"),
    ("select.bogus=1", "select"),
    ("baselines=[not_a_model]", "baselines"),
    ("baselines=7", "baselines"),
])
def test_bad_select_and_baselines_settings_are_one_line_errors(capsys, tmp_path, setting, needle):
    code = main(["run", "space=mbconv", "evaluator=cost", "budget=2", f"out={tmp_path}", "progress=false",
                 setting])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and needle in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_selection_options_are_checked_in_python_too():
    with pytest.raises(NasError, match="select.repeats"):
        Selection.from_options({"repeats": "three"})
    assert Selection.from_options("none").active is False
    assert Selection.from_options(None).racing
