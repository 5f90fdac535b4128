"""Run files: atomic writes, CSV tables that grow by appending, and the shared leaderboard."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from nas.run.files import (
    LEADERBOARD_COLUMNS,
    append_leaderboard,
    append_rows,
    atomic_write_text,
    read_rows,
    read_table,
)
from nas.run.results import leaderboard
from search_spaces.errors import ConfigError, NasError
from tests.paths import ROOT


def test_atomic_write_replaces_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "sub" / "state.json"
    atomic_write_text(path, "one")
    atomic_write_text(path, "two")
    assert path.read_text() == "two"
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]


def test_append_rows_grows_the_header_and_keeps_earlier_rows_byte_for_byte(tmp_path):
    path = tmp_path / "t.csv"
    append_rows(path, [{"trial": 0, "arch": "a,b", "accuracy": 0.1 + 0.2}], base=("trial", "arch"),
                tail=("error",))
    first = path.read_text().splitlines()[1]
    append_rows(path, [{"trial": 1, "arch": "c", "latency_ms": 3.5, "error": "Boom: x\ny"}],
                base=("trial", "arch"), tail=("error",))
    lines = path.read_text().splitlines()
    assert lines[0] == "trial,arch,accuracy,latency_ms,error"  # new metric before the tail column
    assert lines[1] == first + ","  # the old row, one empty cell longer
    rows = read_rows(path)
    assert rows[1]["error"] == "Boom: x y"  # newlines never split a row
    frame = read_table(path)
    assert frame["accuracy"].iloc[0] == 0.1 + 0.2  # floats round-trip exactly


def test_a_torn_last_line_is_cut_before_the_next_append(tmp_path):
    path = tmp_path / "t.csv"
    append_rows(path, [{"trial": 0, "arch": "a"}], base=("trial", "arch"))
    with open(path, "a") as handle:
        handle.write("1,half-writ")  # what a writer killed mid-write could leave
    append_rows(path, [{"trial": 2, "arch": "c"}], base=("trial", "arch"))
    assert [r["trial"] for r in read_rows(path)] == ["0", "2"]


_WRITER = textwrap.dedent(
    """
    import sys
    from nas.run.files import append_leaderboard
    out, worker = sys.argv[1], int(sys.argv[2])
    for i in range(50):
        row = {"run_id": f"w{worker}", "trial": i, "arch": f"arch,{worker},{i}", "status": "ok",
               "accuracy": i / 50, f"metric_{worker}": i}  # each worker brings its own column
        append_leaderboard(out, [row])
    """
)


def test_four_processes_appending_fifty_rows_each_leave_two_hundred_rows(tmp_path):
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), str(w)], cwd=ROOT)
        for w in range(4)
    ]
    assert all(p.wait(timeout=60) == 0 for p in procs)
    frame = pd.read_csv(tmp_path / "leaderboard.csv")  # parseable, strictly
    assert len(frame) == 200
    assert list(frame.columns[: len(LEADERBOARD_COLUMNS)]) == list(LEADERBOARD_COLUMNS)
    assert {f"metric_{w}" for w in range(4)} <= set(frame.columns)
    for w in range(4):
        mine = frame[frame["run_id"] == f"w{w}"]
        assert sorted(mine["trial"]) == list(range(50))
        assert (mine["arch"] == [f"arch,{w},{i}" for i in mine["trial"]]).all()
        assert (mine[f"metric_{w}"] == mine["trial"]).all()


def test_leaderboard_sorts_filters_and_keeps_run_ids_as_text(tmp_path):
    append_leaderboard(tmp_path, [
        {"run_id": "007", "trial": 0, "space": "a", "arch": "x", "status": "ok", "accuracy": 0.5,
         "latency_ms": 9.0},
        {"run_id": "007", "trial": 1, "space": "a", "arch": "y", "status": "failed",
         "error": "ValueError: no"},
        {"run_id": "008", "trial": 0, "space": "b", "arch": "z", "status": "ok", "accuracy": 0.7,
         "latency_ms": 3.0},
    ])
    board = leaderboard(tmp_path)
    assert list(board["arch"]) == ["z", "x", "y"]  # accuracy, larger first, failures last
    assert board["run_id"].tolist() == ["008", "007", "007"]
    assert list(leaderboard(tmp_path, sort="latency_ms")["arch"][:2]) == ["z", "x"]
    assert list(leaderboard(tmp_path, sort="latency_ms:max")["arch"][:2]) == ["x", "z"]
    assert list(leaderboard(tmp_path, space="a", top=1)["arch"]) == ["x"]
    with pytest.raises(ConfigError, match="did you mean accuracy"):
        leaderboard(tmp_path, sort="acuracy")


def test_missing_leaderboard_is_a_one_line_error(tmp_path):
    with pytest.raises(NasError, match="no leaderboard at"):
        leaderboard(tmp_path)
