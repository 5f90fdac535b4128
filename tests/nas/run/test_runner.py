"""The run loop: failures recorded, duplicates never evaluated, budgets, and exact resume."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from evaluators.base import TrialPruned
from nas.run.api import search
from nas.run.files import read_rows
from nas.run.runner import Run
from nas.strategies import ASK_TELL, Problem, Strategy, make_strategy
from search_spaces.errors import NasError
from search_spaces.space import CategoricalSpace
from tests.paths import ROOT

VOLATILE = ["wall_s", "timestamp"]  # the only columns allowed to differ between two runs

SPACE = {"a": list(range(6)), "b": list(range(6)), "c": ["x", "y", "z"]}


def score(arch: Mapping[str, Any]) -> dict[str, float]:
    return {"accuracy": (arch["a"] * 7 + arch["b"] * 3 + len(arch["c"])) % 11 / 10 + arch["a"] / 100,
            "params": 1000 * (arch["a"] + 1)}


def make_run(tmp_path, name="r", strategy="evolution", evaluator=score, budget=12, seed=0, **kw):
    space = CategoricalSpace(SPACE)
    problem = Problem()
    return Run(space, make_strategy(strategy, space, problem, seed), evaluator, problem,
               run_dir=tmp_path / "runs" / name, budget=budget, seed=seed, **kw)


def stable(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=VOLATILE).reset_index(drop=True)


def test_evaluator_failures_are_recorded_and_the_run_goes_on(tmp_path):
    def flaky(arch):
        if arch["a"] % 2:
            raise RuntimeError(f"out of memory\nat a={arch['a']}")
        if arch["b"] == 5:
            raise TrialPruned("stopped at epoch 1")
        return score(arch)

    trials = make_run(tmp_path, evaluator=flaky, budget=20).run()
    assert len(trials) == 20 and trials["trial"].tolist() == list(range(20))
    failed = trials[trials["status"] == "failed"]
    assert len(failed) > 0 and failed["accuracy"].isna().all()
    assert all(e.startswith("RuntimeError: out of memory at a=") for e in failed["error"])
    assert set(trials["status"]) <= {"ok", "failed", "pruned"}
    assert (trials[trials["status"] == "pruned"]["error"] == "stopped at epoch 1").all()
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    assert len(board) == 20 and (board["status"] == trials["status"]).all()


def test_a_missing_objective_or_a_bad_return_value_fails_the_trial(tmp_path):
    def bad(arch):
        return {"params": 3} if arch["a"] < 3 else ["not", "a", "dict"]

    trials = make_run(tmp_path, evaluator=bad, budget=6).run()
    assert (trials["status"] == "failed").all()
    # Each failure names its own cause, and both causes occurred.
    causes = set()
    for arch, error in zip(trials["arch"], trials["error"]):
        cause = ("MissingMetric: evaluator returned no 'accuracy'" if json.loads(arch)["a"] < 3
                 else "TypeError: evaluator returned list")
        assert error.startswith(cause), (arch, error)
        causes.add(cause)
    assert len(causes) == 2


class Replay(Strategy):
    """Proposes a fixed list (with repeats) and records what it is told."""

    name = "replay"

    def __init__(self, space, archs):
        super().__init__(space)
        self.archs, self.told = list(archs), []

    def ask(self, n=1):
        return [self.archs.pop(0)] if self.archs else []

    def tell(self, arch, metrics):
        self.told.append((self.space.key(arch), metrics["status"]))

    def state_dict(self):
        return {"archs": self.archs, "told": self.told}

    def load_state_dict(self, state):
        self.archs, self.told = list(state["archs"]), [tuple(t) for t in state["told"]]


def test_a_key_is_never_evaluated_twice(tmp_path):
    space = CategoricalSpace(SPACE)
    one, two = {"a": 1, "b": 2, "c": "x"}, {"a": 2, "b": 2, "c": "x"}
    calls = []
    strategy = Replay(space, [one, dict(one), two, one, two])

    def counting(arch):
        calls.append(space.key(arch))
        return score(arch)

    run = Run(space, strategy, counting, run_dir=tmp_path / "runs" / "d", budget=10)
    trials = run.run()
    assert len(calls) == len(set(calls)) == 2 and len(trials) == 2
    assert len(strategy.told) == 5  # duplicates are answered from memory, not re-evaluated
    assert "nothing new" in run.stopped_because


def test_time_budget_stops_between_trials(tmp_path):
    def slow(arch):
        time.sleep(0.05)
        return score(arch)

    run = make_run(tmp_path, evaluator=slow, budget=None, budget_hours=0.12 / 3600)
    trials = run.run()
    assert 1 <= len(trials) <= 4 and "time budget" in run.stopped_because


@pytest.mark.integration
@pytest.mark.parametrize("strategy", sorted(ASK_TELL))
def test_resume_after_a_crash_gives_the_uninterrupted_trials(tmp_path, strategy):
    # Through nas.search, so strategies keeping their own store (Optuna) get it in the run folder.
    space = CategoricalSpace(SPACE)
    options = {"space": space, "strategy": strategy, "budget": 12, "seed": 1, "out": tmp_path}
    reference = search(evaluator=score, run_id="ref", **options).trials

    calls = {"n": 0}

    def crashing(arch):
        calls["n"] += 1
        if calls["n"] == 10:
            raise KeyboardInterrupt  # the process dies with trial 9 in flight
        return score(arch)

    with pytest.raises(KeyboardInterrupt):
        search(evaluator=crashing, run_id="cut", **options)
    assert len(read_rows(tmp_path / "runs" / "cut" / "trials.csv")) == 9
    resumed = search(evaluator=score, run_id="cut", resume=True, **options).trials
    pd.testing.assert_frame_equal(stable(resumed), stable(reference))
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    assert sorted(board[board["run_id"] == "cut"]["trial"]) == list(range(12))


def test_an_uncommitted_row_is_dropped_and_the_leaderboard_completed_on_resume(tmp_path):
    reference = make_run(tmp_path, "ref", budget=8).run()
    make_run(tmp_path, "cut", budget=4).run()
    rdir = tmp_path / "runs" / "cut"
    with open(rdir / "trials.csv", "a") as handle:  # died after the row, before state.json
        handle.write("4,\"{}\",ok,0.5,1,0.1,t,\n")
    board = tmp_path / "leaderboard.csv"
    lines = board.read_text().splitlines(keepends=True)
    board.write_text("".join(lines[:-1]))  # died after state.json, before the leaderboard
    resumed = make_run(tmp_path, "cut", budget=8).run(resume=True)
    pd.testing.assert_frame_equal(stable(resumed), stable(reference))
    rows = pd.read_csv(board)
    assert sorted(rows[rows["run_id"] == "cut"]["trial"]) == list(range(8))


def test_resuming_a_finished_run_keeps_its_winner_and_why_it_stopped(tmp_path):
    first = make_run(tmp_path, "done", budget=6)
    trials = first.run()
    again = make_run(tmp_path, "done", budget=6)
    pd.testing.assert_frame_equal(again.run(resume=True), trials)
    assert again.stopped_because == first.stopped_because == "budget of 6 evaluations reached"


def test_resuming_a_missing_or_corrupt_run_is_a_clear_error(tmp_path):
    with pytest.raises(NasError, match=r"cannot resume run nope: no state.json in .*nope"):
        make_run(tmp_path, "nope").run(resume=True)
    make_run(tmp_path, "bad", budget=3).run()
    state = tmp_path / "runs" / "bad" / "state.json"
    state.write_text(state.read_text()[:40])
    with pytest.raises(NasError) as err:
        make_run(tmp_path, "bad").run(resume=True)
    message = str(err.value)
    assert "corrupt" in message and "start a new run" in message and "\n" not in message
    with pytest.raises(NasError, match="already exists"):
        make_run(tmp_path, "bad").run()


_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import nas

    out, resume = sys.argv[1], sys.argv[2] == "1"
    space = nas.CategoricalSpace({"a": list(range(6)), "b": list(range(6)), "c": ["x", "y", "z"]})

    def evaluate(arch):
        time.sleep(0.04)
        return {"accuracy": (arch["a"] * 7 + arch["b"] * 3 + len(arch["c"])) % 11 / 10
                + arch["a"] / 100}

    nas.search(space, strategy="evolution", evaluator=evaluate, budget=24, seed=3, out=out,
               run_id="r", resume=resume)
    """
)


def _search(out: Path, resume: bool = False) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _SCRIPT, str(out), "1" if resume else "0"],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True)


@pytest.mark.integration  # a subprocess killed mid-run
def test_sigkill_mid_run_then_resume_gives_the_same_trials(tmp_path):
    reference = _search(tmp_path / "ref")
    victim = _search(tmp_path / "cut")
    trials = tmp_path / "cut" / "runs" / "r" / "trials.csv"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if trials.is_file() and len(trials.read_text().splitlines()) > 8:
            break
        time.sleep(0.01)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=10)
    done = len(read_rows(trials))
    assert 0 < done < 24, "the run was not killed mid-way"
    resumed = _search(tmp_path / "cut", resume=True)
    for proc in (reference, resumed):
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    expected = pd.read_csv(tmp_path / "ref" / "runs" / "r" / "trials.csv")
    got = pd.read_csv(trials)
    assert len(got) == 24
    pd.testing.assert_frame_equal(stable(got), stable(expected))
    state = json.loads((tmp_path / "cut" / "runs" / "r" / "state.json").read_text())
    assert state["trials"] == 24
