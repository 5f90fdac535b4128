"""Run plots: best-so-far against evaluations, and the Pareto front of two objectives.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot), so plotting never touches the
global backend of a user's session, and saved atomically like every other run file.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from nas.problem import best_so_far, pareto_rows
from nas.store import atomic_write_bytes
from nas.strategies.base import Problem


def _figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.2), dpi=100)
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot(1, 1, 1)


def _save(figure, path: Path) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())


def _label(objective) -> str:
    return f"{objective.metric} ({'higher' if objective.direction == 'max' else 'lower'} is better)"


def progress_plot(trials: pd.DataFrame, problem: Problem, path: Path, title: str = "") -> None:
    """Every ok trial's first objective and the running best, against the evaluation number."""
    objective = problem.objectives[0]
    figure, ax = _figure()
    n = len(trials)
    x = np.arange(1, n + 1)
    if n and objective.metric in trials:
        values = pd.to_numeric(trials[objective.metric], errors="coerce").to_numpy(dtype=float)
        ok = (trials["status"] == "ok").to_numpy() if "status" in trials else np.ones(n, bool)
        values = np.where(ok, values, np.nan)
        feasible = np.array([problem.violation(r) <= 0 for r in trials.to_dict(orient="records")])
        ax.scatter(x[feasible], values[feasible], s=12, color="0.6", label="trial")
        if not feasible.all():
            ax.scatter(x[~feasible], values[~feasible], s=12, marker="x", color="0.75",
                       label="breaks a constraint")
        best = best_so_far(np.where(feasible, values, np.nan).tolist(), objective.direction)
        ax.step(x, best, where="post", color="tab:blue", label="best so far")
        ax.legend(loc="best")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("evaluations")
    ax.set_ylabel(_label(objective))
    ax.set_title(title or "search progress")
    ax.grid(alpha=0.3)
    _save(figure, path)


def pareto_plot(trials: pd.DataFrame, problem: Problem, path: Path, title: str = "") -> None:
    """The first two objectives of every ok trial, the Pareto front highlighted."""
    first, second = problem.objectives[0], problem.objectives[1]
    figure, ax = _figure()
    if not trials.empty and {first.metric, second.metric} <= set(trials.columns):
        ok = trials[trials["status"] == "ok"]
        ax.scatter(ok[second.metric], ok[first.metric], s=12, color="0.6", label="trial")
        front = pareto_rows(trials, problem).sort_values(second.metric)
        ax.plot(front[second.metric], front[first.metric], "o-", color="tab:red", ms=4,
                label="Pareto front")
        ax.legend(loc="best")
    ax.set_xlabel(_label(second))
    ax.set_ylabel(_label(first))
    ax.set_title(title or "Pareto front")
    ax.grid(alpha=0.3)
    _save(figure, path)


def alphas_plot(history: list[dict], units: list[str], path: Path) -> None:
    """DARTS: the probability of every candidate of every unit, epoch by epoch."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = min(4, len(units))
    rows = -(-len(units) // columns)
    figure = Figure(figsize=(3.2 * columns, 2.4 * rows), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False)
    epochs = [h["epoch"] for h in history]
    for ax, unit in zip(axes.flat, units):
        series = list(zip(*(h["probabilities"][unit] for h in history)))
        best = max(range(len(series)), key=lambda k: series[k][-1])
        for k, values in enumerate(series):
            ax.plot(epochs, values, lw=2 if k == best else 0.6, color="tab:red" if k == best else "0.6")
        ax.set_title(unit, fontsize=9)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(units):]:
        ax.axis("off")
    figure.supxlabel("epoch")
    figure.supylabel("probability")
    _save(figure, path)
