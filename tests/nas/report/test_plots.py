"""Run plots with repeats and baselines: what each figure draws, and the PNG files."""
from __future__ import annotations

import numpy as np
import pytest
from matplotlib.container import ErrorbarContainer

from nas.report.plots import (
    pareto_figure,
    pareto_plot,
    progress_figure,
    progress_plot,
    tradeoff_figure,
    tradeoff_plot,
)
from nas.strategies.base import Problem
from tests.runfiles import ACCURACY, BASELINES, FRONT, MIN_REPEATS, PARETO, WINNER, trials

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def points(ax, gid: str) -> np.ndarray:
    """The (x, y) of the finite points of the scatter with this gid."""
    (collection,) = [c for c in ax.collections if c.get_gid() == gid]
    offsets = np.asarray(collection.get_offsets(), dtype=float)
    return offsets[np.isfinite(offsets).all(axis=1)]


def bars(ax, gid: str) -> int:
    """How many points the errorbar call with this gid gave bars (its x or y bars, one per point)."""
    for container in ax.containers:
        if isinstance(container, ErrorbarContainer):
            for collection in container.lines[2]:
                if collection.get_gid() == gid:
                    return len(collection.get_segments())
    return 0


def labels(ax) -> list[str]:
    return [t.get_text() for t in ax.texts if t.get_gid() == "baseline-label"]


def legend(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_progress_shows_repeats_their_means_the_winner_and_baselines():
    table = trials()
    (ax,) = progress_figure(table, ACCURACY, baselines=BASELINES, min_repeats=MIN_REPEATS).axes
    searched = table[table["stage"] != "baseline"]
    # Baseline evaluations are no dots; evaluations are numbered from the first searched one.
    new = (searched["stage"] == "search") & (searched["status"] == "ok")
    assert len(points(ax, "search")) == int(new.sum())
    repeats = points(ax, "repeat")
    assert len(repeats) == int((searched["stage"] == "select").sum())
    assert repeats[:, 0].min() > 1 and points(ax, "search")[:, 0].min() == 1
    # One mean ± std per architecture evaluated more than once, at its last evaluation.
    assert bars(ax, "repeat-mean") == 3
    # The line follows the best mean, not the lucky single draw of 85.
    (line,) = [ln for ln in ax.lines if ln.get_label() == "winner so far (mean)"]
    y = line.get_ydata()
    assert y[-1] == pytest.approx(81.0)
    first_repeat_of_lucky = int(np.flatnonzero((searched["arch"] == "lucky").to_numpy())[1])
    assert max(y[first_repeat_of_lucky:]) < 85
    # The winner: a star at its mean, where its last evaluation landed.
    last_of_winner = int(np.flatnonzero((searched["arch"] == WINNER).to_numpy())[-1]) + 1
    assert [tuple(p) for p in points(ax, "winner")] == [(last_of_winner, 81.0)]
    # Each baseline: a dashed line at its mean and its name at the right edge.
    assert labels(ax) == list(BASELINES.values())
    means = {ln.get_gid(): ln.get_ydata()[0] for ln in ax.lines if (ln.get_gid() or "").startswith("baseline:")}
    assert means == {f"baseline:{key}": pytest.approx(m) for key, m in zip(BASELINES, (71.0, 66.0))}
    assert "baseline: mean ± std" in legend(ax) and "repeat (another seed)" in legend(ax)


def test_progress_baselines_default_to_every_baseline_of_the_table_or_none():
    (ax,) = progress_figure(trials(), ACCURACY).axes
    assert labels(ax) == ["baseline 1", "baseline 2"]
    (ax,) = progress_figure(trials(), ACCURACY, baselines={}).axes
    assert labels(ax) == [] and "baseline: mean ± std" not in legend(ax)


def test_progress_of_a_table_without_stages_or_repeats_keeps_working(tmp_path):
    table = trials()
    table = table[table["stage"] == "search"].drop(columns=["stage", "repeat"])
    (ax,) = progress_figure(table, ACCURACY).axes
    assert bars(ax, "repeat-mean") == 0 and labels(ax) == []
    (line,) = [ln for ln in ax.lines if ln.get_label() == "winner so far (mean)"]
    assert list(line.get_ydata()) == [80, 80, 85, 85, 85, 85]
    progress_plot(table, ACCURACY, tmp_path / "progress.png", title="old")  # the old call
    assert (tmp_path / "progress.png").read_bytes()[:8] == PNG_SIGNATURE


def test_tradeoff_shows_means_the_front_the_winner_and_labelled_baselines():
    table = trials()
    (ax,) = tradeoff_figure(table, ACCURACY, baselines=BASELINES, winner=WINNER).axes
    assert len(points(ax, "searched")) == 5  # one point per architecture; the failed one has none
    assert bars(ax, "searched-std") == 3  # the architectures evaluated more than once
    front = points(ax, "front-points")
    assert sorted(map(tuple, front)) == [(1.0, 60.0), (2.0, 74.5), (10.0, 81.0)]
    assert len(FRONT) == len(front)
    assert [tuple(p) for p in points(ax, "winner")] == [(10.0, 81.0)]
    assert sorted(labels(ax)) == sorted(BASELINES.values())
    for key in BASELINES:
        assert bars(ax, f"baseline:{key}") == 1  # its latency and accuracy spread, one marker
    assert ax.get_xscale() == "log"  # latencies from 1 to 40 ms
    assert ax.get_xlabel() == "latency_ms (lower is better)"
    assert ax.get_ylabel() == "accuracy (higher is better)"


def test_tradeoff_is_linear_over_a_narrow_range_and_says_when_x_is_missing(tmp_path):
    table = trials()
    narrow = table[table["arch"].isin([WINNER, "fast", *BASELINES])]  # latencies from 2 to 12 ms
    (ax,) = tradeoff_figure(narrow, ACCURACY).axes
    assert ax.get_xscale() == "linear"
    assert not any(c.get_gid() == "winner" for c in ax.collections)  # no winner given, no star
    (ax,) = tradeoff_figure(table.drop(columns=["latency_ms"]), ACCURACY).axes
    assert any("no architecture with both accuracy and latency_ms" in t.get_text() for t in ax.texts)
    capped = Problem(objectives=ACCURACY.objectives, constraints={"latency_ms": 20.0})
    (ax,) = tradeoff_figure(table, capped).axes
    assert [ln.get_xdata()[0] for ln in ax.lines if ln.get_gid() == "constraint"] == [20.0]
    over = [tuple(p) for p in points(ax, "infeasible")]  # "lucky" and "slow"
    assert over == [(30.0, pytest.approx(75.67, abs=0.01)), (40.0, 78.0)]
    tradeoff_plot(table, ACCURACY, tmp_path / "params.png", x="params", baselines=BASELINES)
    assert (tmp_path / "params.png").read_bytes()[:8] == PNG_SIGNATURE


def test_pareto_plot_draws_baselines_and_keeps_its_old_call(tmp_path):
    table = trials()
    (ax,) = pareto_figure(table, PARETO, baselines=BASELINES, winner=WINNER).axes
    assert sorted(labels(ax)) == sorted(BASELINES.values())
    assert len(points(ax, "front-points")) == 3 and len(points(ax, "winner")) == 1
    pareto_plot(table, PARETO, tmp_path / "pareto.png", title="old")
    pareto_plot(table, PARETO, tmp_path / "pareto_b.png", baselines=BASELINES, winner=WINNER)
    for name in ("pareto.png", "pareto_b.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG_SIGNATURE


def test_plots_write_pngs(tmp_path):
    table = trials()
    progress_plot(table, ACCURACY, tmp_path / "progress.png", baselines=BASELINES, min_repeats=3)
    tradeoff_plot(table, ACCURACY, tmp_path / "tradeoff.png", baselines=BASELINES, winner=WINNER)
    for name in ("progress.png", "tradeoff.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == PNG_SIGNATURE and len(data) > 10_000
