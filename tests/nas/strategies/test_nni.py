"""NNI's strategies through the bridge (strategy=nni.<Name>, the ``nni`` extra): runs, records,
determinism, resume, the one-line error without NNI, and nothing left in the home directory."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pandas as pd
import pytest

import nas
from nas.cli.commands import main
from nas.run.runconfig import config_from_overrides
from nas.strategies import STRATEGIES, Objective, Problem, make_strategy, nni_loader
from search_spaces import CategoricalSpace
from search_spaces.errors import ConfigError
from tests.nas.strategies.test_strategies import SPACE, drive, score

HAS_NNI = importlib.util.find_spec("nni") is not None
HAS_TIANSHOU = importlib.util.find_spec("tianshou") is not None
needs_nni = pytest.mark.skipif(not HAS_NNI, reason="NNI is not installed (pip install 'nas[nni]')")
RL = pytest.param("nni.PolicyBasedRL", marks=pytest.mark.skipif(
    not HAS_TIANSHOU, reason="nni.PolicyBasedRL needs tianshou"))
SEEDED = ["nni.GridSearch", "nni.Random", "nni.RegularizedEvolution", "nni.TPE"]
BRIDGED = [*SEEDED, RL]
TOY = {"depth": [1, 2, 3], "width": [8, 16, 32], "act": ["relu", "silu"]}


def toy(arch):
    if arch["width"] == 32 and arch["act"] == "silu":
        raise ValueError("diverged")
    return {"accuracy": arch["depth"] * 10 + arch["width"] / 8 + (arch["act"] == "silu")}


def home_nni_entries() -> dict[str, set[str]]:
    """What NNI could leave in the home directory: nni-experiments (and its content), .config/nni."""
    home = Path.home()
    found = {}
    for path in (home / "nni-experiments", home / ".config" / "nni"):
        if path.exists():
            found[str(path)] = {str(p) for p in path.rglob("*")}
    return found


def test_registered_with_options_and_dotted_names_parse():
    assert {"nni.RegularizedEvolution", "nni.TPE", "nni.PolicyBasedRL", "nni.Random",
            "nni.GridSearch"} <= set(STRATEGIES)
    cfg, explicit = config_from_overrides(["strategy=nni.TPE", "n_startup_jobs=5", "budget=3"])
    assert cfg["strategy"]["name"] == "nni.TPE" and cfg["strategy"]["n_startup_jobs"] == 5
    assert "strategy.n_startup_jobs" in explicit
    with pytest.raises(ConfigError, match="population_size: expected int"):
        config_from_overrides(["strategy=nni.RegularizedEvolution", "population_size=many"])


@pytest.mark.parametrize("name", ["nni.TPE", "nni.RegularizedEvolution", "nni.GridSearch"])
def test_without_nni_the_error_is_one_line_naming_the_extra(monkeypatch, name, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "nni", None)  # `import nni` fails as if it were not installed
    monkeypatch.setattr(nni_loader, "_NNI", {})
    with pytest.raises(ConfigError) as info:
        make_strategy(name, SPACE)
    message = str(info.value)
    assert "\n" not in message and name in message and "pip install 'nas[nni]'" in message
    code = main(["run", f"strategy={name}", "space=mbconv", "evaluator=cost", "budget=2",
                 f"out={tmp_path}", "progress=false"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "pip install 'nas[nni]'" in err
    assert not (tmp_path / "runs").exists()  # refused before anything is written


@pytest.mark.integration
@needs_nni
@pytest.mark.parametrize("name", BRIDGED)
def test_completes_a_run_on_nasbench_macro(name, table_path, table, tmp_path):
    before = home_nni_entries()
    result = nas.search("nasbench_macro", strategy=name, evaluator="nasbench_macro",
                        evaluator_options={"path": str(table_path)}, budget=8, seed=0, out=tmp_path,
                        progress=False)
    trials = result.trials
    assert len(trials) == 8 and trials["arch"].is_unique and (trials["status"] == "ok").all()
    assert list(trials["trial"]) == list(range(8))
    assert result.best["accuracy"] == trials["accuracy"].max()
    # Every trial is in the run folder and the leaderboard like any other strategy's.
    csv = pd.read_csv(result.run_dir / "trials.csv")
    assert list(csv["arch"]) == list(trials["arch"])
    board = nas.leaderboard(tmp_path)
    assert len(board) == 8 and set(board["strategy"]) == {name} and set(board["run_id"]) == {result.run_id}
    # NNI's working files are inside the run folder, and the home directory gains nothing.
    assert (result.run_dir / "nni" / "nni.log").stat().st_size > 0
    assert home_nni_entries() == before


@pytest.mark.integration
@needs_nni
@pytest.mark.parametrize("name", BRIDGED)
def test_completes_a_run_on_a_categorical_space(name, tmp_path):
    result = nas.search(CategoricalSpace(TOY), strategy=name, evaluator=toy, budget=10, seed=2,
                        out=tmp_path, progress=False)
    trials = result.trials
    assert len(trials) == 10 and trials["arch"].is_unique
    failed = trials[trials["status"] == "failed"]
    assert (failed["error"] == "ValueError: diverged").all()
    ok = trials[trials["status"] == "ok"]
    assert result.best["accuracy"] == ok["accuracy"].max()
    assert result.best_arch == json.loads(result.best["arch"])
    board = nas.leaderboard(tmp_path)
    assert sorted(board["trial"]) == list(range(10)) and set(board["strategy"]) == {name}


@needs_nni
@pytest.mark.parametrize("name", ["nni.GridSearch", "nni.Random", "nni.TPE"])
def test_exhausting_a_small_space_stops_the_run(name, tmp_path):
    space = CategoricalSpace({"a": [1, 2, 3], "b": ["x", "y"]})
    result = nas.search(space, strategy=name, evaluator=lambda a: a["a"], budget=10, out=tmp_path,
                        progress=False)
    assert len(result.trials) == 6 and result.best["accuracy"] == 3
    assert "nothing new" in result.stopped_because


@pytest.mark.integration
@needs_nni
@pytest.mark.parametrize("name", BRIDGED)
def test_ask_tell_same_seed_same_asks_and_exact_state_round_trip(name):
    strategy = make_strategy(name, SPACE, seed=1)
    keys = drive(strategy, 40)
    assert len(keys) == len(set(keys)) == 40
    assert max(score(json.loads(k)) for k in keys) >= 10
    assert drive(make_strategy(name, SPACE, seed=7), 15) == drive(make_strategy(name, SPACE, seed=7), 15)
    first = make_strategy(name, SPACE, seed=3)
    drive(first, 12)
    state = json.loads(json.dumps(first.state_dict()))
    second = make_strategy(name, SPACE, seed=3)
    second.load_state_dict(state)  # NNI starts again and is answered from memory up to here
    assert drive(first, 12) == drive(second, 12)


@needs_nni
@pytest.mark.parametrize("name", ["nni.RegularizedEvolution", "nni.TPE"])
def test_resume_after_a_crash_gives_the_uninterrupted_trials(name, tmp_path):
    options = {"space": CategoricalSpace(TOY), "strategy": name, "budget": 9, "seed": 1,
               "out": tmp_path, "progress": False}
    reference = nas.search(evaluator=toy, run_id="ref", **options).trials
    calls = {"n": 0}

    def crashing(arch):
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt  # the process dies with trial 5 in flight
        return toy(arch)

    with pytest.raises(KeyboardInterrupt):
        nas.search(evaluator=crashing, run_id="cut", **options)
    resumed = nas.search(evaluator=toy, run_id="cut", resume=True, **options).trials
    volatile = ["wall_s", "timestamp"]
    pd.testing.assert_frame_equal(resumed.drop(columns=volatile), reference.drop(columns=volatile))


@needs_nni
def test_known_infeasible_members_are_never_proposed():
    problem = Problem(constraints={"cost": 4}, estimate=lambda m: {"cost": m["a"] + m["b"]})
    strategy = make_strategy("nni.RegularizedEvolution", SPACE, problem, seed=0, population_size=10,
                             sample_size=3)
    for _ in range(30):
        for member in strategy.ask(1):
            assert member["a"] + member["b"] <= 4
            failed = member["c"] == 2
            strategy.tell(member, {"status": "failed"} if failed else
                          {"accuracy": score(member), "cost": member["a"] + member["b"]})
    assert strategy.rejected > 0  # NNI proposed them; the bridge answered them as failed


@needs_nni
def test_model_based_strategies_refuse_several_objectives():
    problem = Problem(objectives=(Objective("accuracy", "max"), Objective("latency_ms", "min")))
    with pytest.raises(ConfigError, match="optimises one objective"):
        make_strategy("nni.TPE", SPACE, problem)
    make_strategy("nni.Random", SPACE, problem).close()  # it ignores the values anyway


@needs_nni
def test_command_line_run_with_a_dotted_strategy_name(table_path, tmp_path, capsys):
    code = main(["run", "strategy=nni.TPE", "n_startup_jobs=3", "space=nasbench_macro",
                 "evaluator=nasbench_macro", f"evaluator.path={table_path}", "budget=5",
                 f"out={tmp_path}", "run_id=cli", "progress=false"])
    assert code == 0, capsys.readouterr().err
    rdir = tmp_path / "runs" / "cli"
    assert len(pd.read_csv(rdir / "trials.csv")) == 5 and (rdir / "nni" / "nni.log").is_file()
    code = main(["run", "resume=true", "run_id=cli", "budget=7", f"out={tmp_path}", "progress=false"])
    assert code == 0, capsys.readouterr().err
    assert len(pd.read_csv(rdir / "trials.csv")) == 7
