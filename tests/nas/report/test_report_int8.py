"""Float32 against int8 in `nas report` and the int8.png plot of a ``quantize=int8`` run."""
from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

import nas
from nas.report import int8
from nas.report.plots import run_plots
from nas.report.report import render
from nas.run.files import atomic_write_text
from nas.run.folder import RunDir
from nas.strategies.base import Objective, Problem
from tests.spaces import TINY

ACCURACY = Problem(objectives=(Objective("accuracy", "max"),))
INT8_PARETO = Problem(objectives=(Objective("accuracy_int8", "max"), Objective("latency_int8_ms", "min")))
INLINE_PNG = r'src="data:image/png;base64,[A-Za-z0-9+/=]{200,}"'
TRACE = "quantize: TraceError: symbolically traced variables cannot be used as inputs to control flow"

# (arch, stage, accuracy, accuracy_int8, latency_ms, latency_int8_ms, error): "twice" is repeated
# (drops 2 and 1), "fast" loses nothing and gains nothing, "untraceable" never quantizes, "ref" is
# a baseline (left out of the medians and the table).
_ROWS = [
    ("ref", "baseline", 60.0, 50.0, 20.0, 20.0, ""),
    ("twice", "search", 80.0, 78.0, 10.0, 5.0, ""),
    ("fast", "search", 70.0, 70.0, 4.0, 4.0, ""),
    ("untraceable", "search", math.nan, math.nan, math.nan, math.nan, TRACE),
    ("twice", "select", 82.0, 81.0, 10.0, 5.0, ""),
    ("untraceable", "select", math.nan, math.nan, math.nan, math.nan, TRACE),
]


def trials(with_int8: bool = True) -> pd.DataFrame:
    """The rows a ``quantize=int8`` run writes (``with_int8=False``: a float-only run's)."""
    rows = [{"trial": i, "arch": arch, "stage": stage, "status": "failed" if error else "ok",
             "accuracy": acc, "accuracy_int8": acc8, "latency_ms": lat, "latency_int8_ms": lat8,
             "params": 1000.0, "error": error}
            for i, (arch, stage, acc, acc8, lat, lat8, error) in enumerate(_ROWS)]
    frame = pd.DataFrame(rows)
    return frame if with_int8 else frame.drop(columns=["accuracy_int8", "latency_int8_ms"])


def write_run(root: Path, with_int8: bool = True, objectives: tuple[str, ...] = ("accuracy",)) -> RunDir:
    """A run folder (config, trials, plots) as an int8 or a float-only run leaves it."""
    rdir = RunDir(root / "runs" / ("q" if with_int8 else "f"))
    rdir.path.mkdir(parents=True)
    evaluator = {"name": "proxy", **({"quantize": "int8"} if with_int8 else {})}
    config = {"space": "mbconv", "strategy": {"name": "random"}, "evaluator": evaluator,
              "objectives": list(objectives)}
    atomic_write_text(rdir.config, yaml.safe_dump(config))
    table = trials(with_int8)
    atomic_write_text(rdir.trials, table.to_csv(index=False))
    problem = Problem(objectives=tuple(Objective(m, "max" if "accuracy" in m else "min") for m in objectives))
    run_plots(table, problem, rdir.path, title=rdir.run_id, winner="twice")
    return rdir


def section(page: str, heading: str) -> str:
    return page.split(f"<h2>{heading}</h2>")[1].split("<h2>")[0]


def test_rows_average_repeats_and_give_the_drop_the_ratio_and_the_failure():
    twice, fast, untraceable = int8.candidate_rows(trials(), ["twice", "fast", "untraceable"])
    assert twice["n"] == 2 and twice["accuracy"] == 81.0 and twice["accuracy_int8"] == 79.5
    assert twice["drop"] == 1.5 and twice["drop_std"] == pytest.approx(math.sqrt(0.5))  # drops 2 and 1
    assert twice["ratio"] == 0.5 and "error" not in twice
    assert fast["n"] == 1 and fast["drop"] == 0.0 and fast["ratio"] == 1.0 and math.isnan(fast["drop_std"])
    assert untraceable["n"] == 0 and untraceable["failures"] == 2 and untraceable["error"] == TRACE
    assert "accuracy" not in untraceable and "ratio" not in untraceable


def test_the_overview_takes_medians_over_searched_candidates_and_counts_failures():
    counts = int8.overview(trials())
    # "ref" (a baseline, drop 10) is not a candidate: medians of twice and fast only.
    assert counts == {"ok": 2, "failed": 1, "drop": 0.75, "ratio": 0.75}
    failures = int8.quantize_failures(trials())
    assert failures.to_dict(orient="records") == [{"arch": "untraceable", "trial": 3, "failures": 2,
                                                   "error": TRACE}]


def test_the_figure_draws_both_fronts_and_joins_each_network_s_two_points():
    figure = int8.int8_figure(trials(), ACCURACY, winner="twice")
    ax = figure.axes[0]
    gids = {artist.get_gid(): artist for artist in ax.get_children() if artist.get_gid()}
    assert {"float32-points", "int8-points", "float32-front-points", "int8-front-points", "pairs",
            "float32-winner", "int8-winner"} <= set(gids)
    assert len(gids["pairs"].get_segments()) == 2  # twice and fast; the baseline and the failure have none
    # Both are on both fronts: fast is the faster, twice the more accurate, in float32 and in int8.
    def points(gid: str) -> list[tuple[float, float]]:
        return sorted(map(tuple, gids[gid].get_offsets().tolist()))

    assert points("int8-front-points") == [(4.0, 70.0), (5.0, 79.5)]
    assert points("float32-front-points") == [(4.0, 70.0), (10.0, 81.0)]
    assert points("int8-winner") == [(5.0, 79.5)] and points("float32-winner") == [(10.0, 81.0)]
    assert "winner" in ax.get_legend_handles_labels()[1]


def test_the_report_of_an_int8_run_has_the_section_and_the_figure(tmp_path):
    rdir = write_run(tmp_path, objectives=("accuracy_int8", "latency_int8_ms"))
    assert (rdir.path / "int8.png").is_file()
    part = section(render(rdir), "Float32 and int8")
    assert ("Over 2 candidates, int8 lost a median 0.75 points of accuracy and ran at a median 0.75× "
            "the float32 latency; 1 failed to quantize.") in part
    rows = part.split("</tr>")
    # Ranked first by accuracy_int8, the first objective.
    assert "★ winner" in rows[1] and '<td class="arch">twice</td>' in rows[1]
    assert "<td>81.0 ± 1.4 (n=2)</td><td>79.5 ± 2.1</td><td>1.50 ± 0.71</td><td>10</td><td>5</td>" \
           "<td>0.50×</td>" in rows[1]
    assert "<td>70.0 (n=1)</td><td>70.0</td><td>0.00</td><td>4</td><td>4</td><td>1.00×</td>" in rows[2]
    assert "<td>3</td>" in rows[3] and f"{TRACE} (2 of 2 evaluations)" in rows[3]
    assert "ref" not in part  # baselines have their own table
    assert re.search(r'<h3>Accuracy against latency</h3><img alt="int8.png" ' + INLINE_PNG, part)


def test_a_float_only_run_has_no_int8_section_nor_figure(tmp_path):
    rdir = write_run(tmp_path, with_int8=False)
    assert not (rdir.path / "int8.png").exists() and (rdir.path / "progress.png").is_file()
    page = render(rdir)
    assert "Float32 and int8" not in page and "int8.png" not in page


def test_an_int8_run_where_nothing_quantized_lists_its_failures(tmp_path):
    rdir = RunDir(tmp_path / "runs" / "none")
    rdir.path.mkdir(parents=True)
    atomic_write_text(rdir.config, yaml.safe_dump({"space": "x", "evaluator": {"name": "proxy",
                                                                                "quantize": "int8"}}))
    # Failed rows carry no metrics, so trials.csv has no int8 column: the config says it was int8.
    failed = trials().query("arch == 'untraceable'")[["trial", "arch", "status", "error"]]
    atomic_write_text(rdir.trials, failed.to_csv(index=False))
    part = section(render(rdir), "Float32 and int8")
    assert "No candidate has both float32 and int8 results; 1 failed to quantize." in part
    assert f"{TRACE} (2 of 2 evaluations)" in part and "<img" not in part


@pytest.mark.integration
def test_a_real_int8_run_reports_float32_and_int8_and_a_float_run_does_not(tmp_path):
    space = tmp_path / "tiny.yaml"
    space.write_text(TINY)
    common = {"space": str(space), "strategy": "random", "evaluator": "proxy", "seed": 0, "budget": 2,
              "out": str(tmp_path), "data": {"name": "digits", "limit": 400}, "baselines": "none",
              "select": "none", "latency": {"name": "measured", "warmup": 0, "repeats": 2, "rounds": 2},
              "evaluator_options": {"epochs": 1}}
    nas.search(run_id="q", quantize="int8", **common)
    nas.search(run_id="f", **common)
    runs = tmp_path / "runs"
    assert (runs / "q" / "int8.png").is_file() and not (runs / "f" / "int8.png").exists()
    part = section(render(RunDir(runs / "q")), "Float32 and int8")
    assert re.search(r"Over 2 candidates, int8 lost a median -?[0-9.]+ points of accuracy", part)
    assert part.count("(n=1)</td>") == 2 and "×</td>" in part
    assert re.search(r'<img alt="int8.png" ' + INLINE_PNG, part)
    page = render(RunDir(runs / "f"))
    assert "Float32 and int8" not in page and "int8.png" not in page
