"""Zero-cost proxies: finite, reproducible scores from one batch; clear errors; usable in a search."""
from __future__ import annotations

import math

import pytest

import nas
from evaluators.base import DEFAULT_DATA
from evaluators.registry import make_evaluator
from evaluators.zero_cost import PROXIES, ZeroCostEvaluator
from nas.strategies import make_strategy
from search_spaces import load_space
from search_spaces.cost import cost
from search_spaces.errors import NasError

DATA = {**DEFAULT_DATA, "limit": 300}
SMALL = "resnet@224_relu:stem_k3_s2_c16:basic_k3_c16:basic_k3_c32_s2:head_pool"
WIDER = "resnet@224_relu:stem_k3_s2_c16:basic_k3_c32:basic_k3_c64_s2:head_pool"


@pytest.mark.parametrize("proxy", PROXIES)
def test_every_proxy_gives_a_reproducible_finite_score(proxy):
    evaluator = ZeroCostEvaluator(data=DATA, proxy=proxy, batch_size=16)
    first, again, other = evaluator(SMALL), evaluator(SMALL), evaluator(WIDER)
    assert math.isfinite(first["zero_cost"]) and first["zero_cost"] == again["zero_cost"]
    assert first["zero_cost"] != other["zero_cost"]
    assert first["params"] == cost(SMALL, 10).params


def test_params_proxy_is_the_parameter_count():
    assert ZeroCostEvaluator(data=DATA, proxy="params")(WIDER)["zero_cost"] == cost(WIDER, 10).params


def test_noise_inputs_differ_from_data_inputs():
    data = ZeroCostEvaluator(data=DATA, proxy="naswot", batch_size=16)(SMALL)["zero_cost"]
    noise = ZeroCostEvaluator(data=DATA, proxy="naswot", batch_size=16, inputs="random")(SMALL)["zero_cost"]
    assert data != noise


@pytest.mark.parametrize(("options", "fragment"), [
    ({"proxy": "synflw"}, "unknown proxy 'synflw' (did you mean synflow?)"),
    ({"inputs": "noise"}, "unknown inputs 'noise'"),
    ({"batch_size": 1}, "batch_size: must be an integer >= 2"),
])
def test_bad_options_are_one_line_errors(options, fragment):
    with pytest.raises(NasError) as error:
        make_evaluator("zero_cost", data=DATA, **options)
    assert fragment in str(error.value) and "\n" not in str(error.value)


@pytest.mark.integration
def test_a_zero_cost_search_maximises_the_score(tmp_path):
    result = nas.search(space="nasbench_macro", strategy="random", evaluator="zero_cost", budget=3, seed=0,
                        out=tmp_path, data=DATA, evaluator_options={"proxy": "naswot", "batch_size": 16})
    assert list(result.trials["status"]) == ["ok"] * 3
    assert result.best["zero_cost"] == result.trials["zero_cost"].max()


def test_prescreening_evaluates_only_the_best_scoring_share(tmp_path):
    calls = []

    def scored_by_table(arch):
        calls.append(arch)
        return {"accuracy": 1.0}

    result = nas.search(space="nasbench_macro", strategy="random", evaluator=scored_by_table, budget=4,
                        seed=0, out=tmp_path, prescreen="params", prescreen_keep=0.25)
    assert len(calls) == 4 and len(result.trials) == 4
    # Each evaluated network had the most parameters of the four proposals it was chosen from.

    space = load_space("nasbench_macro")
    replay = make_strategy("random", space, seed=0)
    for arch in calls:
        pool = replay.ask(4)
        assert space.key(arch) == space.key(max(pool, key=lambda a: cost(a, 10).params))


def test_bad_prescreen_settings_are_one_line_errors(tmp_path):
    with pytest.raises(NasError, match="unknown prescreen 'naswt' \\(did you mean naswot"):
        nas.search(space="nasbench_macro", evaluator="cost", budget=2, out=tmp_path, prescreen="naswt")
    with pytest.raises(NasError, match="prescreen_keep: must be a number in \\(0, 1\\]"):
        nas.search(space="nasbench_macro", evaluator="cost", budget=2, out=tmp_path, prescreen="params",
                   prescreen_keep=0)
    assert not (tmp_path / "runs").exists()
