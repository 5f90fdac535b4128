"""backend=ray: Ray Tune trials driven by the run's strategy, files written as by backend=local."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from nas.cli.commands import main
from nas.run.api import search
from nas.run.files import read_rows
from search_spaces.space import CategoricalSpace
from tests.ray_evaluators import SPACE, Curves, DiesOnce, Scored

pytestmark = pytest.mark.integration  # starts Ray clusters, kills processes or runs DDP ranks

ray = pytest.importorskip("ray")
from tests.paths import ROOT

VOLATILE = ["wall_s", "timestamp"]


@pytest.fixture(scope="module", autouse=True)
def cluster():
    """One local Ray cluster of 2 CPUs for the module (a run joins a running one)."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield
    ray.shutdown()


def _search(tmp_path, evaluator, budget=6, name="r", **kw):
    return search(space=CategoricalSpace(SPACE), strategy=kw.pop("strategy", "evolution"),
                  evaluator=evaluator, budget=budget, out=tmp_path, run_id=name, seed=0, **kw)


def test_one_worker_gives_the_local_backends_trials(tmp_path):
    local = _search(tmp_path, Scored(), budget=8, name="local")
    tuned = _search(tmp_path, Scored(), budget=8, name="tuned", backend="ray", ray={"workers": 1})
    assert len(tuned.trials) == 8
    pd.testing.assert_frame_equal(local.trials.drop(columns=VOLATILE), tuned.trials.drop(columns=VOLATILE))
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    assert (board["run_id"] == "tuned").sum() == 8
    state = json.loads((tmp_path / "runs" / "tuned" / "state.json").read_text())
    assert state["trials"] == 8 and state["pending"] == []
    assert (tmp_path / "runs" / "tuned" / "progress.png").is_file()


def test_two_workers_evaluate_in_parallel(tmp_path):
    log = tmp_path / "log"
    log.mkdir()
    result = _search(tmp_path, Scored(sleep=1.5, log_dir=str(log)), budget=6, backend="ray",
                     ray={"workers": 2})
    trials = result.trials
    assert trials["trial"].tolist() == list(range(6)) and (trials["status"] == "ok").all()
    assert trials["arch"].is_unique
    spans = [tuple(map(float, line.split()[1:3])) for line in (log / "attempts.log").read_text().splitlines()]
    pids = {line.split()[0] for line in (log / "attempts.log").read_text().splitlines()}
    assert len(spans) == 6 and len(pids) >= 2 and os.getpid() not in map(int, pids)
    overlapping = sum(1 for i, a in enumerate(spans) for b in spans[i + 1:] if a[0] < b[1] and b[0] < a[1])
    assert overlapping >= 2  # at least two pairs of evaluations ran at the same time
    rows = read_rows(tmp_path / "leaderboard.csv")
    assert sorted(int(r["trial"]) for r in rows) == list(range(6))


def _search_killing_the_first_worker(tmp_path, budget: int, max_failures: int):
    """A run whose first evaluation's worker process is SIGKILLed; (result, attempts log lines)."""
    folder = tmp_path / "flags"
    folder.mkdir()

    def killer() -> None:
        deadline = time.time() + 120
        while not (folder / "pid").exists() and time.time() < deadline:
            time.sleep(0.1)
        os.kill(int((folder / "pid").read_text()), signal.SIGKILL)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    result = _search(tmp_path, DiesOnce(str(folder)), budget=budget, backend="ray",
                     ray={"workers": 1, "max_failures": max_failures})
    thread.join(timeout=5)
    return result, (folder / "attempts.log").read_text().splitlines()


def test_a_killed_worker_is_retried_and_the_run_completes(tmp_path):
    result, attempts = _search_killing_the_first_worker(tmp_path, budget=4, max_failures=2)
    first = attempts[0].split()
    # the first architecture was tried twice, in two processes: killed, then retried
    assert [a.split()[1] for a in attempts].count(first[1]) == 2
    assert len({a.split()[0] for a in attempts if a.split()[1] == first[1]}) == 2
    assert len(result.trials) == 4 and (result.trials["status"] == "ok").all()


def test_a_worker_that_keeps_dying_is_a_failed_trial(tmp_path):
    result, _ = _search_killing_the_first_worker(tmp_path, budget=3, max_failures=0)
    trials = result.trials
    assert len(trials) == 3 and trials["status"].tolist() == ["failed", "ok", "ok"]
    assert trials["error"].iloc[0].startswith("WorkerFailed: the trial's Ray worker died 1 times")


def test_asha_stops_trials_that_trail(tmp_path):
    result = _search(tmp_path, Curves(epochs=9), budget=12, backend="ray", ray={"workers": 1},
                     pruner="asha", strategy="random")
    trials = result.trials
    assert len(trials) == 12
    pruned = trials[trials["status"] == "pruned"]
    assert len(pruned) >= 3 and (trials["status"] == "ok").sum() >= 1
    assert pruned["accuracy"].notna().all()  # the last reported epoch is kept


SCRIPT = """
import sys
sys.path.insert(0, {root!r})
from nas.run.api import search
from search_spaces.space import CategoricalSpace
from tests.ray_evaluators import SPACE, Scored
search(space=CategoricalSpace(SPACE), evaluator=Scored(sleep={sleep}), budget=6, out={out!r},
       run_id="r", seed=0, backend="ray", ray={{"workers": 2}}, resume={resume})
"""


def _driver(tmp_path: Path, resume: bool, sleep: float) -> subprocess.Popen:
    code = SCRIPT.format(root=str(ROOT), out=str(tmp_path), sleep=sleep, resume=resume)
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.slow  # a Ray cluster start and a kill: minutes of CI; run with -m slow
def test_a_killed_driver_resumes_without_losing_or_repeating_trials(tmp_path):
    proc = _driver(tmp_path, resume=False, sleep=3.0)
    trials = tmp_path / "runs" / "r" / "trials.csv"
    deadline = time.time() + 120
    while time.time() < deadline and (not trials.exists() or len(read_rows(trials)) < 2):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    state = json.loads((tmp_path / "runs" / "r" / "state.json").read_text())
    committed, pending = state["trials"], state["pending"]
    assert 2 <= committed < 6 and pending  # killed with evaluations in flight
    proc = _driver(tmp_path, resume=True, sleep=0.0)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]
    rows = read_rows(trials)
    assert [int(r["trial"]) for r in rows] == list(range(6))
    assert len({r["arch"] for r in rows}) == 6
    # what was in flight at the kill is evaluated on resume, not lost
    assert set(pending) <= {r["arch"] for r in rows[committed:]}
    board = read_rows(tmp_path / "leaderboard.csv")
    assert sorted(int(r["trial"]) for r in board) == list(range(6))


@pytest.mark.parametrize("args, message", [
    (["ray.workers=0"], "ray.workers: must be an integer >= 1"),
    (["ray.cpus_per_trial=0"], "ray.cpus_per_trial: must be > 0"),
    (["ray.max_failures=x"], "ray.max_failures"),
    (["ray.wokers=2"], "unknown key 'ray.wokers' (did you mean ray.workers"),
])
def test_bad_ray_settings_are_one_line_errors(tmp_path, capsys, args, message):
    code = main(["run", "backend=ray", "evaluator=cost", f"out={tmp_path}", "progress=false", *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()
