"""Pruning: evaluations that report poor epochs stop early, the same way after a resume."""
from __future__ import annotations

import pandas as pd
import pytest

import nas
from nas.cli.commands import main
from nas.run.files import read_rows

SPACE = {"q": list(range(1, 11)), "r": list(range(6))}
EPOCHS = 9


def make_evaluator(log: list):
    def curve(arch, report):
        """Accuracy grows with the epoch, faster for larger q; r only breaks ties."""
        for epoch in range(1, EPOCHS + 1):
            accuracy = arch["q"] * 10 * (1 - 0.7 ** epoch) + arch["r"] / 100
            log.append((arch["q"], arch["r"], epoch))
            report(epoch, {"accuracy": accuracy})
        return {"accuracy": accuracy}

    return curve


@pytest.mark.parametrize("pruner", ["median", "asha"])
def test_poor_learning_curves_are_stopped_early(tmp_path, pruner):
    log: list = []
    result = nas.search(space=nas.CategoricalSpace(SPACE), strategy="random", evaluator=make_evaluator(log),
                        budget=30, seed=0, out=tmp_path, pruner=pruner)
    trials = result.trials
    pruned = trials[trials["status"] == "pruned"]
    assert len(trials) == 30 and 5 <= len(pruned) < 30
    assert pruned["error"].str.startswith(f"pruned by {pruner} after epoch").all()
    epochs_run = len(log)
    assert epochs_run < 30 * EPOCHS  # the pruned trials did not train to the end
    # What is pruned is the weak: every pruned trial scored below the best finished one.
    finished = trials[trials["status"] == "ok"]
    assert pruned["accuracy"].max() < finished["accuracy"].max()
    assert result.best["accuracy"] == finished["accuracy"].max()


def test_pruning_after_a_resume_is_the_uninterrupted_pruning(tmp_path):
    options = {"space": nas.CategoricalSpace(SPACE), "strategy": "evolution", "budget": 24, "seed": 2,
               "out": tmp_path, "pruner": "asha"}
    reference = nas.search(evaluator=make_evaluator([]), run_id="ref", **options).trials
    calls = {"n": 0}
    inner = make_evaluator([])

    def crashing(arch, report):
        calls["n"] += 1
        if calls["n"] == 15:
            raise KeyboardInterrupt
        return inner(arch, report)

    with pytest.raises(KeyboardInterrupt):
        nas.search(evaluator=crashing, run_id="cut", **options)
    assert len(read_rows(tmp_path / "runs" / "cut" / "trials.csv")) == 14
    resumed = nas.search(evaluator=make_evaluator([]), run_id="cut", resume=True, **options).trials
    columns = ["trial", "arch", "status", "accuracy", "error"]
    pd.testing.assert_frame_equal(resumed[columns], reference[columns])
    assert (reference["status"] == "pruned").any()


def test_an_unknown_pruner_is_a_one_line_error(capsys, tmp_path):
    code = main(["run", "evaluator=cost", "pruner=medain", f"out={tmp_path / 'o'}"])
    err = capsys.readouterr().err
    assert code == 2 and "unknown pruner 'medain' (did you mean median?)" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()
