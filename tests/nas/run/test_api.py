"""The Python API: nas.search over any space and evaluator, the tabular evaluator, run files."""
from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
import yaml

import nas
import nas.run.api
from evaluators.registry import EVALUATORS, make_evaluator, register
from evaluators.tabular import NasBenchMacro
from nas.strategies import ASK_TELL
from search_spaces.builder import build_model  # the suite imports torch anyway
from search_spaces.errors import ConfigError, NasError, UnknownNameError
from tests.paths import ROOT

SPACE = {"depth": [1, 2, 3], "width": [8, 16, 32], "act": ["relu", "silu"]}


def toy(arch):
    if arch["width"] == 32 and arch["act"] == "silu":
        raise ValueError("diverged")
    return {"accuracy": arch["depth"] * 10 + arch["width"] / 8 + (arch["act"] == "silu"),
            "latency_ms": arch["depth"] * arch["width"] / 8}






@pytest.mark.parametrize("strategy", sorted(ASK_TELL))
def test_categorical_space_and_a_callable_work_with_every_strategy(tmp_path, strategy):
    space = nas.CategoricalSpace(SPACE)
    result = nas.search(space, strategy=strategy, evaluator=toy, budget=8, seed=2, out=tmp_path)
    trials = result.trials
    assert len(trials) == 8 and trials["arch"].is_unique
    assert list(trials["trial"]) == list(range(8))
    assert {"trial", "arch", "status", "accuracy"} <= set(trials.columns)
    ok = trials[trials["status"] == "ok"]
    assert result.best["accuracy"] == ok["accuracy"].max()
    assert result.best_arch == json.loads(result.best["arch"])
    failed = trials[trials["status"] == "failed"]
    assert (failed["error"] == "ValueError: diverged").all()
    assert result.run_dir.parent.parent == tmp_path
    config = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    assert config["strategy"]["name"] == strategy and config["evaluator"]["name"] == "python:toy"


def test_exhausting_a_small_space_stops_the_run(tmp_path):
    space = nas.CategoricalSpace({"a": [1, 2, 3]})
    result = nas.search(space, strategy="random", evaluator=lambda a: a["a"], budget=10, out=tmp_path)
    assert len(result.trials) == 3 and result.best["accuracy"] == 3
    assert "nothing new" in result.stopped_because


def test_two_objectives_give_a_pareto_set_and_both_plots(tmp_path):
    space = nas.CategoricalSpace(SPACE)
    result = nas.search(space, strategy="evolution", evaluator=toy, budget=18, out=tmp_path,
                        objectives=["accuracy", "latency_ms"])
    assert [o.direction for o in result.problem.objectives] == ["max", "min"]
    front = result.pareto
    assert len(front) >= 2
    ok = result.trials[result.trials["status"] == "ok"]
    for _, row in front.iterrows():  # nothing in the table dominates a front member
        better = ok[(ok["accuracy"] >= row["accuracy"]) & (ok["latency_ms"] <= row["latency_ms"])
                    & ((ok["accuracy"] > row["accuracy"]) | (ok["latency_ms"] < row["latency_ms"]))]
        assert better.empty
    for name in ("progress.png", "pareto.png", "best.yaml", "trials.csv", "state.json", "config.yaml"):
        assert (result.run_dir / name).stat().st_size > 0, name
    assert (result.run_dir / "progress.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    best = yaml.safe_load((result.run_dir / "best.yaml").read_text())
    assert len(best["pareto"]) == len(front) and best["best"]["arch"] == result.best["arch"]


def test_single_objective_runs_draw_no_pareto_plot(tmp_path):
    result = nas.search(nas.CategoricalSpace(SPACE), strategy="random", evaluator=toy, budget=4,
                        out=tmp_path)
    assert (result.run_dir / "progress.png").is_file()
    assert not (result.run_dir / "pareto.png").exists()


def test_constraints_keep_the_best_feasible(tmp_path):
    result = nas.search(nas.CategoricalSpace(SPACE), strategy="random", evaluator=toy, budget=18,
                        out=tmp_path, constraints={"latency_ms": 4})
    assert result.best["latency_ms"] <= 4
    ok = result.trials[(result.trials["status"] == "ok") & (result.trials["latency_ms"] <= 4)]
    assert result.best["accuracy"] == ok["accuracy"].max()


def test_resume_extends_the_budget_and_checks_settings(tmp_path):
    space = nas.CategoricalSpace(SPACE)
    first = nas.search(space, strategy="evolution", evaluator=toy, budget=5, out=tmp_path, run_id="x")
    longer = nas.search(space, evaluator=toy, budget=9, out=tmp_path, resume=True)  # latest run
    assert longer.run_id == "x" and len(longer.trials) == 9
    pd.testing.assert_frame_equal(longer.trials.head(5), first.trials)
    with pytest.raises(ConfigError, match="cannot change strategy.name when resuming run x"):
        nas.search(space, strategy="random", evaluator=toy, out=tmp_path, resume=True, run_id="x")
    with pytest.raises(NasError, match="run x already exists"):
        nas.search(space, evaluator=toy, budget=3, out=tmp_path, run_id="x")
    with pytest.raises(NasError, match=r"cannot resume run y: no such run in .*runs"):
        nas.search(space, evaluator=toy, out=tmp_path, resume=True, run_id="y")


def test_bad_arguments_write_nothing(tmp_path):
    space = nas.CategoricalSpace(SPACE)
    with pytest.raises(ConfigError, match="budget: must be >= 1"):
        nas.search(space, evaluator=toy, budget=0, out=tmp_path)
    with pytest.raises(UnknownNameError, match="did you mean evolution"):
        nas.search(space, strategy="evolutoin", evaluator=toy, out=tmp_path)
    with pytest.raises(ConfigError, match="population"):
        nas.search(space, evaluator=toy, out=tmp_path, populaton=5)
    with pytest.raises(UnknownNameError, match="unknown evaluator 'nope'"):
        nas.search(space, evaluator="nope", out=tmp_path)
    assert not any(tmp_path.iterdir())


def test_import_nas_does_not_import_torch():
    code = ("import sys, nas; nas.search; nas.leaderboard; nas.CategoricalSpace; nas.load_space; "
            "nas.Architecture; assert 'build_model' in dir(nas); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)

    assert nas.build_model is build_model


# -- the tabular evaluator ----------------------------------------------------------------------------
def test_tabular_evaluator_returns_the_table_numbers(table_path, table):
    evaluator = make_evaluator("nasbench_macro", path=str(table_path))
    space = nas.load_space("nasbench_macro")
    from_key = getattr(space, "arch_from_key", None) or space.from_code
    for key in ("02012100", "11111221", "22222222", "00000000"):
        row = table[key]
        got = evaluator(from_key(key))
        assert got == {"accuracy": row["mean_acc"], "bench_std": row["std"],
                       "params": row["params"], "macs": row["flops"]}
    assert evaluator(str(from_key("22222222")))["accuracy"] == table["22222222"]["mean_acc"]
    with pytest.raises(NasError, match="not a nasbench_macro architecture"):
        evaluator(nas.load_space("mbconv").sample(__import__("random").Random(0)))


def test_tabular_evaluator_reads_the_environment(table_path, monkeypatch):
    monkeypatch.setenv("NAS_BENCH_MACRO", str(table_path))
    assert NasBenchMacro().path == table_path


def test_tabular_search_finds_table_values(tmp_path, table_path, table):
    result = nas.search("nasbench_macro", strategy="evolution", evaluator="nasbench_macro",
                        evaluator_options={"path": str(table_path)}, budget=25, out=tmp_path)
    space = result.space
    to_key = getattr(space, "key_of", None) or space.code
    for _, row in result.trials.iterrows():
        assert row["accuracy"] == table[to_key(space.from_string(row["arch"]))]["mean_acc"]
    assert (result.trials["status"] == "ok").all()


def test_tabular_evaluator_errors_are_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("NAS_BENCH_MACRO", raising=False)
    with pytest.raises(NasError) as err:
        NasBenchMacro()
    message = str(err.value)
    assert "evaluator.path=" in message and "NAS_BENCH_MACRO" in message and "\n" not in message
    with pytest.raises(NasError, match="does not exist"):
        NasBenchMacro(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    for text, fragment in [("{not json", "not JSON"), ('{"01": {"mean_acc": 1}}', "needs mean_acc"),
                           ("[1, 2]", "expected an object")]:
        bad.write_text(text)
        with pytest.raises(NasError, match=fragment) as err:
            NasBenchMacro(bad)
        assert "malformed" in str(err.value) and "\n" not in str(err.value)


def test_tabular_evaluator_refuses_another_space_before_writing(tmp_path, table_path):
    with pytest.raises(NasError, match="only architectures of the nasbench_macro space"):
        nas.search("mbconv", evaluator="nasbench_macro", evaluator_options={"path": str(table_path)},
                   budget=2, out=tmp_path)
    assert not any(tmp_path.iterdir())


def test_evaluator_registry_takes_new_names(tmp_path):
    class Constant:
        name = "constant"

        def __init__(self, value: float = 1.0):
            self.value = value

        def __call__(self, arch, report=None):
            return {"accuracy": self.value}

    with EVALUATORS.scratch():
        register("constant_test", Constant)
        result = nas.search(nas.CategoricalSpace({"a": [1, 2]}), strategy="random",
                            evaluator="constant_test", evaluator_options={"value": 0.5}, budget=2,
                            out=tmp_path)
        assert list(result.trials["accuracy"]) == [0.5, 0.5]
        with pytest.raises(ConfigError, match="did you mean value"):
            make_evaluator("constant_test", valeu=2)
        with pytest.raises(ValueError, match="evaluator 'constant_test' is registered already"):
            register("constant_test", Constant)  # a name is never silently replaced
    assert "constant_test" not in EVALUATORS


def test_constraints_no_member_meets_stop_the_run_with_the_reason(tmp_path, monkeypatch):
    # A bound below the smallest member is refused at the start (tests/nas/run/test_impossible_bounds.py);
    # past that check, the run itself still stops with the reason and names no winner.

    with pytest.raises(ConfigError, match="max_macs: 300,000,000 is below the smallest member of resnet"):
        nas.search(space="resnet", strategy="evolution", evaluator="cost", budget=3, out=tmp_path, max_macs=3e8)
    assert not any(tmp_path.iterdir())
    monkeypatch.setattr(nas.run.api, "check_reachable", lambda *a, **k: None)
    result = nas.search(space="resnet", strategy="evolution", evaluator="cost", budget=3, out=tmp_path,
                        max_macs=3e8)
    assert result.trials.empty and result.best is None
    assert "proposals broke macs <= 3e+08 before training" in result.stopped_because
    assert result.stopped_because.endswith("no feasible candidate was evaluated, so there is no winner")
