"""``nas run``, ``nas leaderboard`` and ``nas strategies`` on the command line."""
from __future__ import annotations

import pandas as pd
import pytest

from nas.cli.commands import main
from nas.strategies import STRATEGIES


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err




@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["space=mbconf"], "unknown space 'mbconf' (did you mean mbconv?)"),
        (["strategy=evolutoin"], "unknown strategy 'evolutoin' (did you mean evolution?)"),
        (["evaluator=nasbench"], "unknown evaluator 'nasbench' (did you mean nasbench_macro?)"),
        (["budget=0"], "budget: must be >= 1"),
        (["budget=-4"], "budget: must be >= 1"),
        (["budget=ten"], "budget: expected int"),
        (["budegt=3"], "unknown key 'budegt' (did you mean budget?)"),
        (["populaton=5"], "did you mean population"),
        (["population=many"], "strategy.population: expected int"),
        (["sampler=tpe"], "sampler is an option of strategy optuna, not of evolution"),
        (["evaluator.pth=x"], "unknown key 'evaluator.pth'"),
        (["seed=0.5"], "seed: expected int"),
        (["objectives=[accuracy:best]"], "direction must be max or min"),
        (["budget=null"], "a run needs a budget"),
        (["budget_hours=-1"], "budget_hours: must be a number > 0"),
        (["max_params=lots"], "constraint params: expected a number"),
        (["data=digits"], "evaluator cost does not use data"),
        (["run_id=../x"], "run_id: use letters"),
        (["resume=true", "run_id=ghost"], "cannot resume run ghost: no such run in"),
        (["resume=true"], "nothing to resume"),
        (["backend=moon"], "unknown backend 'moon'"),
        (["budget"], "expected key=value"),
    ],
)
def test_bad_run_inputs_exit_2_with_one_line_and_write_nothing(capsys, tmp_path, argv, fragment):
    out = tmp_path / "out"
    code, _, err = run(capsys, "run", "evaluator=cost", f"out={out}", *argv)
    assert code == 2, err
    assert fragment in err and err.startswith("error: ")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["evaluator.epochs=0"], "epochs: must be an integer >= 1"),
        (["evaluator.optimizer=adam"], "optimizer: 'adam' is not one of adamw, sgd"),
        (["evaluator.epoch=3"], "unknown key 'evaluator.epoch' (did you mean evaluator.epochs"),
        (["evaluator.lr=fast"], "evaluator.lr: expected float"),
        (["data=digitz"], "unknown data 'digitz' (did you mean digits?)"),
        (["data.rot=/x"], "unknown data option 'rot' (did you mean root?)"),
        (["data=imagefolder"], "data.root: imagefolder needs data.root=DIR"),
        (["space=nowhere.yaml"], "nowhere.yaml"),
    ],
)
def test_bad_proxy_inputs_exit_2_before_training(capsys, tmp_path, argv, fragment):
    out = tmp_path / "out"
    code, _, err = run(capsys, "run", f"out={out}", "progress=false", *argv)
    assert code == 2, err
    assert fragment in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_nasbench_without_a_path_is_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("NAS_BENCH_MACRO", raising=False)
    code, _, err = run(capsys, "run", "space=nasbench_macro", "evaluator=nasbench_macro",
                       f"out={tmp_path / 'o'}")
    assert code == 2 and "evaluator.path=" in err and "NAS_BENCH_MACRO" in err
    assert err.count("\n") == 1 and not (tmp_path / "o").exists()


def test_run_help_documents_the_keys(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--help"])
    text = capsys.readouterr().out
    assert exit_.value.code == 0
    for key in ("space=", "strategy=", "evaluator.path=", "data.root=", "population=50", "budget=",
                "objectives=", "resume=true", "select=race", "select.top=3", "select.repeats=3", "select.start=0.3",
                "select.k=8", "select.eta=2", "baselines=auto"):
        assert key in text, key


def test_run_then_leaderboard(capsys, tmp_path, table_path):
    out = tmp_path / "res"
    code, stdout, err = run(capsys, "run", "space=nasbench_macro", "evaluator=nasbench_macro",
                            f"evaluator.path={table_path}", "budget=12", "population=8",
                            "sample_size=3", f"out={out}", "run_id=cli", "progress=false")
    assert code == 0, err
    assert "top 5 of 12 architectures (12 evaluations)" in stdout and "accuracy" in stdout
    assert "runs/cli" in stdout and "winner: accuracy" in stdout
    rdir = out / "runs" / "cli"
    for name in ("config.yaml", "trials.csv", "state.json", "best.yaml", "progress.png"):
        assert (rdir / name).is_file(), name
    trials = pd.read_csv(rdir / "trials.csv")
    assert len(trials) == 12
    code, stdout, err = run(capsys, "run", "space=nasbench_macro", "evaluator=nasbench_macro",
                            f"evaluator.path={table_path}", "budget=4", "strategy=random",
                            f"out={out}", "run_id=cli2", "progress=true")
    assert code == 0, err
    assert "cli2" in err  # the progress bar is drawn on stderr

    code, stdout, err = run(capsys, "leaderboard", "--out", str(out), "--top", "3")
    assert code == 0, err
    best = trials["accuracy"].max()
    assert "leaderboard: 3 rows" in stdout and f"{best:.4f}" in stdout
    code, stdout, _ = run(capsys, "leaderboard", "--out", str(out), "--sort", "params", "--space",
                          "nasbench_macro")
    assert code == 0 and "leaderboard: 16 rows" in stdout and "params" in stdout
    code, _, err = run(capsys, "leaderboard", "--out", str(tmp_path / "none"))
    assert code == 2 and "no leaderboard at" in err

    # Resume with a larger budget continues the same run.
    code, stdout, err = run(capsys, "run", "resume=true", "run_id=cli", "budget=15", f"out={out}",
                            "progress=false")
    assert code == 0, err
    assert len(pd.read_csv(rdir / "trials.csv")) == 15
    code, _, err = run(capsys, "run", "resume=true", "run_id=cli", "strategy=random", f"out={out}")
    assert code == 2 and "cannot change strategy.name when resuming run cli" in err

    # config.yaml is enough to run the same search again.
    code, _, err = run(capsys, "run", f"config={rdir / 'config.yaml'}", "run_id=again",
                       "progress=false")
    assert code == 0, err
    again = pd.read_csv(out / "runs" / "again" / "trials.csv")
    assert list(again["arch"]) == list(pd.read_csv(rdir / "trials.csv")["arch"])


def test_strategies_lists_each_with_its_options(capsys):
    code, stdout, _ = run(capsys, "strategies")
    assert code == 0
    for name, cls in STRATEGIES.items():
        assert name in stdout
        for option, _, _ in cls.options():
            assert option in stdout, option
