"""Fault injection: kill -9 at seeded points, torn leaderboard writes, concurrent runs, a full disk,
a corrupt state file. Nothing committed is lost or repeated, and every failure says why.

The default run (CI) takes a few kill points; `pytest -m slow tests/faults` takes all ten.
"""
from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

import nas.run.files
from nas.cli.commands import main
from nas.run.api import search
from nas.run.files import append_leaderboard, read_rows
from search_spaces.errors import NasError
from search_spaces.space import CategoricalSpace

pytestmark = pytest.mark.integration  # starts Ray clusters, kills processes or runs DDP ranks

from tests.paths import ROOT

VOLATILE = ["wall_s", "timestamp"]
SPACE = {"a": list(range(6)), "b": list(range(6)), "c": ["x", "y", "z"]}
BUDGET = 24

RUN_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import nas

    out, run_id, resume = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
    space = nas.CategoricalSpace({"a": list(range(6)), "b": list(range(6)), "c": ["x", "y", "z"]})

    def evaluate(arch):
        time.sleep(0.04)
        return {"accuracy": (arch["a"] * 7 + arch["b"] * 3 + len(arch["c"])) % 11 / 10 + arch["a"] / 100}

    nas.search(space, strategy="evolution", evaluator=evaluate, budget=BUDGET, seed=3, out=out,
               run_id=run_id, resume=resume)
    """
).replace("BUDGET", str(BUDGET))


def score(arch):
    return {"accuracy": (arch["a"] * 7 + arch["b"] * 3 + len(arch["c"])) % 11 / 10 + arch["a"] / 100}


def _start(out: Path, run_id: str = "r", resume: bool = False) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", RUN_SCRIPT, str(out), run_id, "1" if resume else "0"],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True)


def _stable(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=VOLATILE).reset_index(drop=True)


def _committed(trials: Path) -> int:
    return len(read_rows(trials)) if trials.is_file() else 0


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> pd.DataFrame:
    """The trials of the run uninterrupted."""
    out = tmp_path_factory.mktemp("reference")
    proc = _start(out)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return pd.read_csv(out / "runs" / "r" / "trials.csv")


def _kill_points(n: int, seed: int = 7) -> list[tuple[int, float]]:
    """``n`` (committed trials to wait for, extra delay) pairs, seeded, in run order."""
    rng = random.Random(seed)
    counts = sorted(rng.sample(range(1, BUDGET - 1), n))
    return [(count, rng.uniform(0.0, 0.05)) for count in counts]


@pytest.mark.parametrize("points", [
    pytest.param(3, id="3-kills"),
    pytest.param(10, id="10-kills", marks=pytest.mark.slow),
])
def test_kill_9_at_seeded_points_then_resume_gives_the_uninterrupted_trials(tmp_path, reference, points):
    trials = tmp_path / "runs" / "r" / "trials.csv"
    killed = 0
    for i, (count, delay) in enumerate(_kill_points(points)):
        proc = _start(tmp_path, resume=i > 0 and (tmp_path / "runs" / "r" / "state.json").exists())
        deadline = time.monotonic() + 60
        while _committed(trials) < count and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(delay)  # somewhere inside an evaluation or a commit's writes
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait(timeout=30)
        rows = read_rows(trials)
        assert [int(r["trial"]) for r in rows] == list(range(len(rows)))  # no gap, no repeat
    assert killed >= points - 1
    final = _start(tmp_path, resume=True)
    _, err = final.communicate(timeout=120)
    assert final.returncode == 0, err
    got = pd.read_csv(trials)
    pd.testing.assert_frame_equal(_stable(got), _stable(reference))
    board = read_rows(tmp_path / "leaderboard.csv")
    assert sorted(int(r["trial"]) for r in board) == list(range(BUDGET))


WRITER = textwrap.dedent(
    """
    import sys
    from nas.run.files import append_leaderboard
    for i in range(100000):
        append_leaderboard(sys.argv[1], [{"run_id": "w", "trial": i, "arch": "x" * 200,
                                          "status": "ok", "accuracy": i / 7}])
    """
)


@pytest.mark.parametrize("seed", [0, 1, pytest.param(2, marks=pytest.mark.slow),
                                  pytest.param(3, marks=pytest.mark.slow)])
def test_kill_during_leaderboard_writes_loses_no_earlier_row(tmp_path, seed):
    append_leaderboard(tmp_path, [{"run_id": "earlier", "trial": 0, "arch": "a", "status": "ok", "accuracy": 1.0}])
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], cwd=ROOT)
    board = tmp_path / "leaderboard.csv"
    deadline = time.monotonic() + 60
    while board.stat().st_size < 20_000 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(random.Random(seed).uniform(0.0, 0.3))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    rows = read_rows(board)
    assert rows[0]["run_id"] == "earlier"
    written = [int(r["trial"]) for r in rows[1:]]
    assert written == list(range(len(written))) and len(written) > 10
    pd.read_csv(board)  # still parses
    append_leaderboard(tmp_path, [{"run_id": "after", "trial": 0, "arch": "b", "status": "ok"}])
    again = read_rows(board)
    assert again[-1]["run_id"] == "after" and len(again) == len(rows) + 1


def test_four_concurrent_runs_share_one_results_folder(tmp_path):
    procs = [_start(tmp_path, run_id=f"c{i}") for i in range(4)]
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
    board = pd.read_csv(tmp_path / "leaderboard.csv", dtype={"run_id": str})
    assert len(board) == 4 * BUDGET
    for i in range(4):
        trials = pd.read_csv(tmp_path / "runs" / f"c{i}" / "trials.csv")
        mine = board[board["run_id"] == f"c{i}"].sort_values("trial")
        assert mine["trial"].tolist() == list(range(BUDGET))
        assert mine["arch"].tolist() == trials["arch"].tolist()


class _FullDisk(SimpleNamespace):
    """``os`` for nas.run.files whose fsync fails with ENOSPC from the ``n``-th call on."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.calls, self.n = 0, n

    def __getattr__(self, name):
        return getattr(os, name)

    def fsync(self, fd):
        self.calls += 1
        if self.calls >= self.n:
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.fsync(fd)


@pytest.mark.parametrize("failing_write", [8, 9, 10])  # a commit's trials.csv, state.json, leaderboard
def test_a_full_disk_stops_the_run_with_a_clear_message_and_loses_nothing(tmp_path, monkeypatch, failing_write):
    space = CategoricalSpace(SPACE)
    uninterrupted = search(space=space, strategy="evolution", evaluator=score, budget=12, seed=3,
                           out=tmp_path / "ref", run_id="r")
    monkeypatch.setattr(nas.run.files, "os", _FullDisk(failing_write))
    with pytest.raises(NasError) as info:
        search(space=space, strategy="evolution", evaluator=score, budget=12, seed=3, out=tmp_path, run_id="r")
    message = str(info.value)
    assert "\n" not in message and "No space left on device" in message
    assert "committed trials are safe" in message and "resume=true run_id=r" in message
    assert ".csv" in message or ".json" in message  # names the file it could not write
    monkeypatch.undo()  # space freed
    rows_before = read_rows(tmp_path / "runs" / "r" / "trials.csv")
    resumed = search(space=space, strategy="evolution", evaluator=score, budget=12, seed=3, out=tmp_path,
                     run_id="r", resume=True)
    pd.testing.assert_frame_equal(_stable(resumed.trials), _stable(uninterrupted.trials))
    assert [r["arch"] for r in rows_before] == resumed.trials["arch"].tolist()[:len(rows_before)]
    board = read_rows(tmp_path / "leaderboard.csv")
    assert sorted(int(r["trial"]) for r in board) == list(range(12))


def test_a_corrupt_state_file_is_a_clear_error_with_a_way_out(tmp_path, capsys):
    assert main(["run", "evaluator=cost", "budget=3", f"out={tmp_path}", "run_id=r", "progress=false"]) == 0
    state = tmp_path / "runs" / "r" / "state.json"
    state.write_text(state.read_text()[:30])
    before = (tmp_path / "leaderboard.csv").read_bytes()
    capsys.readouterr()
    assert main(["run", "resume=true", "run_id=r", f"out={tmp_path}", "progress=false"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "corrupt" in err and "start a new run" in err and "Traceback" not in err
    assert (tmp_path / "leaderboard.csv").read_bytes() == before
