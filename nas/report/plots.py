"""Run plots: the search's progress, the accuracy / cost trade-off, and the Pareto front.

A network evaluated several times (repeats, each a training seed) is drawn as its mean with a
± std error bar, and hand-designed baselines as references, so that a reader compares means and
sees the noise rather than the luckiest draw. Figures are drawn on matplotlib's Agg canvas
directly (no pyplot), so plotting never touches the global backend of a user's session, and
saved atomically like every other run file. Each ``*_plot`` has a ``*_figure`` twin that
returns the Figure unsaved (for tests and notebooks).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from nas.report.figures import draw_front, log_x, new_figure, save_figure
from nas.report.int8 import int8_plot
from nas.run.problem import arch_summary, default_direction, pareto_rows, winner
from nas.strategies.base import Objective, Problem

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# One colour and marker per baseline, in order; none of them is the grey of the search's points,
# the blue of its running best, the red of its front or the gold of its winner.
_BASELINE_COLOURS = ("tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
_BASELINE_MARKERS = ("s", "D", "^", "v", "P", "X")
_POINT = "0.55"  # one evaluation / one searched architecture
_REPEAT = "0.25"  # a repeat, and the error bar of a repeated architecture
_LABEL_GAP = 0.045  # least vertical distance between two edge labels, as a fraction of the axes


def _label(objective: Objective) -> str:
    return f"{objective.metric} ({'higher' if objective.direction == 'max' else 'lower'} is better)"


def _stage(trials: pd.DataFrame) -> pd.Series:
    """Each row's stage; tables from before stages existed are all search."""
    if "stage" in trials:
        return trials["stage"].fillna("search").astype(str)
    return pd.Series("search", index=trials.index)


def _ok(trials: pd.DataFrame) -> np.ndarray:
    if "status" not in trials:
        return np.ones(len(trials), dtype=bool)
    return (trials["status"] == "ok").to_numpy()


def _baseline_names(trials: pd.DataFrame, baselines: Mapping[str, str] | None) -> dict[str, str]:
    """Architecture key -> display name of each baseline to draw: those of ``baselines`` (in its
    order), or, when it is None, every baseline of the table under a generic name."""
    if baselines is not None:
        return dict(baselines)
    keys = trials.loc[_stage(trials).eq("baseline"), "arch"].drop_duplicates() if "arch" in trials else []
    return {key: f"baseline {i + 1}" for i, key in enumerate(keys)}


def _baseline_stats(trials: pd.DataFrame, metric: str, names: Mapping[str, str]) -> list[dict]:
    """Name, mean, std and count of ``metric`` over each baseline's ok evaluations (those with
    none left out), with its colour."""
    if not names or metric not in trials or "arch" not in trials:
        return []
    ok = trials[_ok(trials)]
    out = []
    for i, (key, name) in enumerate(names.items()):
        values = pd.to_numeric(ok.loc[ok["arch"] == key, metric], errors="coerce").dropna()
        if values.empty:
            continue
        out.append({"key": key, "name": str(name), "mean": float(values.mean()),
                    "std": float(values.std(ddof=1)) if len(values) > 1 else math.nan,
                    "n": len(values), "colour": _BASELINE_COLOURS[i % len(_BASELINE_COLOURS)]})
    return out


def _spread(positions: list[float], gap: float) -> list[float]:
    """``positions`` (fractions of the axes, any order) moved apart to at least ``gap`` each,
    kept inside [0, 1] where they fit."""
    order = sorted(range(len(positions)), key=positions.__getitem__)
    placed = [positions[i] for i in order]
    for i in range(1, len(placed)):
        placed[i] = max(placed[i], placed[i - 1] + gap)
    if placed and placed[-1] > 1:
        placed[-1] = 1.0
        for i in range(len(placed) - 2, -1, -1):
            placed[i] = min(placed[i], placed[i + 1] - gap)
    out = [0.0] * len(positions)
    for i, y in zip(order, placed):
        out[i] = y
    return out


# -- progress ---------------------------------------------------------------------------------------
def _running_winner(rows: pd.DataFrame, problem: Problem,
                    min_repeats: int) -> tuple[list[float], str | None]:
    """After each evaluation of ``rows`` (in order), the mean of the first objective of the
    architecture that would win if the run stopped there (`winner`, as `best_row` chooses; NaN
    while no feasible architecture has a value); and the last winner's key."""
    objective = problem.objectives[0]
    codes, keys = pd.factorize(rows["arch"])
    n, total = np.zeros(len(keys)), np.zeros(len(keys))
    violations = np.zeros(len(keys))
    constrained = [m for m in problem.constraints if m in rows]
    sums = {m: np.zeros(len(keys)) for m in constrained}
    counts = {m: np.zeros(len(keys)) for m in constrained}
    values = pd.to_numeric(rows[objective.metric], errors="coerce").to_numpy(dtype=float)
    limits = {m: pd.to_numeric(rows[m], errors="coerce").to_numpy(dtype=float) for m in constrained}
    ok = _ok(rows)
    out: list[float] = []
    best = None
    for i, code in enumerate(codes):
        if ok[i] and not math.isnan(values[i]):
            n[code] += 1
            total[code] += values[i]
            for m in constrained:
                if not math.isnan(limits[m][i]):
                    sums[m][code] += limits[m][i]
                    counts[m][code] += 1
            # Feasibility is judged on the means, as best_row does.
            means = {m: sums[m][code] / counts[m][code] for m in constrained if counts[m][code]}
            violations[code] = problem.violation(means)
        best = winner(n, total / np.maximum(n, 1) * objective.sign(), violations, min_repeats)
        out.append(math.nan if best is None else float(total[best] / n[best]))
    return out, (str(keys[best]) if best is not None else None)


def _draw_baseline_lines(ax: Axes, stats: list[dict]) -> list:
    """Each baseline as a dashed line at its mean, a light ± std band, its name at the right edge;
    returns the legend entry that explains them (none without baselines)."""
    from matplotlib.lines import Line2D

    for b in stats:
        ax.axhline(b["mean"], ls="--", lw=1.2, color=b["colour"], zorder=1, gid=f"baseline:{b['key']}")
        if not math.isnan(b["std"]):
            ax.axhspan(b["mean"] - b["std"], b["mean"] + b["std"], color=b["colour"], alpha=0.12, lw=0,
                       zorder=0)
    if not stats:
        return []
    low, high = ax.get_ylim()  # autoscaled over everything drawn, bands included
    ax.set_ylim(low, high)  # frozen, so the labels placed next stay beside their lines
    where = _spread([(b["mean"] - low) / (high - low) for b in stats], _LABEL_GAP)
    for b, y in zip(stats, where):
        ax.text(1.01, y, b["name"], transform=ax.transAxes, color=b["colour"], fontsize=8, va="center",
                ha="left", gid="baseline-label")
    return [Line2D([], [], ls="--", color="0.35", label="baseline: mean ± std")]


def progress_figure(trials: pd.DataFrame, problem: Problem, title: str = "",
                    baselines: Mapping[str, str] | None = None, min_repeats: int = 1) -> Figure:
    """The figure of `progress_plot`."""
    from matplotlib.ticker import MaxNLocator

    objective = problem.objectives[0]
    figure, ax = new_figure()
    stage = _stage(trials)
    rows = trials[~stage.eq("baseline")].reset_index(drop=True)
    n = len(rows)
    if n and objective.metric in rows and "arch" in rows:
        x = np.arange(1, n + 1)
        values = pd.to_numeric(rows[objective.metric], errors="coerce").to_numpy(dtype=float)
        values = np.where(_ok(rows), values, np.nan)
        feasible = np.array([problem.violation(r) <= 0 for r in rows.to_dict(orient="records")])
        repeat = _stage(rows).eq("select").to_numpy()
        ax.scatter(x[feasible & ~repeat], values[feasible & ~repeat], s=14, color=_POINT, zorder=2,
                   label="new candidate", gid="search")
        if (feasible & repeat).any():
            ax.scatter(x[feasible & repeat], values[feasible & repeat], s=18, marker="D",
                       facecolors="none", edgecolors=_REPEAT, lw=0.9, zorder=2,
                       label="repeat (another seed)", gid="repeat")
        if not feasible.all():
            ax.scatter(x[~feasible], values[~feasible], s=14, marker="x", color="0.7", zorder=2,
                       label="breaks a constraint", gid="infeasible")
        scored = rows.assign(_x=x, _value=values)[~np.isnan(values)]
        _draw_repeat_bars(ax, scored, problem)
        line, winner = _running_winner(rows, problem, min_repeats)
        ax.step(x, line, where="post", color="tab:blue", lw=1.5, zorder=3, label="winner so far (mean)")
        if winner is not None:
            # The winner's mean where its last evaluation landed: which error bar is the winner's.
            ax.scatter([scored.loc[scored["arch"] == winner, "_x"].max()], [line[-1]], s=150, marker="*",
                       color="gold", edgecolors="0.1", lw=0.8, zorder=6, label="winner", gid="winner")
    stats = _baseline_stats(trials, objective.metric, _baseline_names(trials, baselines))
    handles_extra = _draw_baseline_lines(ax, stats)
    if n or stats:
        handles, _ = ax.get_legend_handles_labels()
        # Below the axes: inside, it hides the points of a long run wherever it goes.
        ax.legend(handles=handles + handles_extra, loc="upper center", bbox_to_anchor=(0.5, -0.14),
                  ncol=3, fontsize=8, frameon=False)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("evaluations (baselines not counted)" if stats else "evaluations")
    ax.set_ylabel(_label(objective))
    ax.set_title(title or "search progress")
    ax.grid(alpha=0.3)
    return figure


def _draw_repeat_bars(ax: Axes, rows: pd.DataFrame, problem: Problem) -> None:
    """Mean ± std of each architecture evaluated more than once, where its last evaluation landed
    (greyed when its means break a constraint)."""
    by_arch = rows.groupby("arch", sort=False)
    stats = pd.DataFrame({"mean": by_arch["_value"].mean(), "std": by_arch["_value"].std(ddof=1),
                          "n": by_arch.size(), "x": by_arch["_x"].max()})
    constrained = [m for m in problem.constraints if m in rows]
    if constrained:
        means = by_arch[constrained].agg(lambda v: pd.to_numeric(v, errors="coerce").mean())
        stats["feasible"] = [problem.violation(r) <= 0 for r in means.to_dict(orient="records")]
    else:
        stats["feasible"] = True
    stats = stats[stats["n"] > 1]
    for feasible, colour, label in ((True, "tab:orange", "mean ± std of repeats"), (False, "0.7", None)):
        part = stats[stats["feasible"] == feasible]
        if not part.empty:
            ax.errorbar(part["x"], part["mean"], yerr=part["std"], fmt="_", ms=10, mew=2, color=colour,
                        elinewidth=1.5, capsize=3, zorder=4, label=label,
                        gid="repeat-mean" if feasible else "repeat-mean-infeasible")


def progress_plot(trials: pd.DataFrame, problem: Problem, path: Path, title: str = "",
                  baselines: Mapping[str, str] | None = None, min_repeats: int = 1) -> None:
    """Every evaluation's first objective against the evaluation number: new candidates as dots,
    repeats as diamonds, mean ± std of repeated architectures, the winner so far (its mean, as
    `best_row` with ``min_repeats`` picks it; a star marks the final one) and each baseline
    (architecture key -> name in ``baselines``; None: every baseline of the table) as a dashed
    line with a ± std band."""
    save_figure(progress_figure(trials, problem, title, baselines, min_repeats), path)


# -- trade-off and Pareto front ---------------------------------------------------------------------
def _objective(problem: Problem, metric: str) -> Objective:
    """``metric`` as the problem optimises it, or in its default direction when it is not optimised."""
    return next((o for o in problem.objectives if o.metric == metric),
                Objective(metric, default_direction(metric)))


def _errors(frame: pd.DataFrame, metric: str) -> np.ndarray:
    """The ``<metric>_std`` column as error-bar lengths (0 where unknown or not measured)."""
    column = f"{metric}_std"
    if column not in frame:
        return np.zeros(len(frame))
    return pd.to_numeric(frame[column], errors="coerce").fillna(0.0).to_numpy(dtype=float)


def _tradeoff_figure(trials: pd.DataFrame, problem: Problem, x: Objective, front: pd.DataFrame,
                     staircase: bool, title: str, baselines: Mapping[str, str] | None,
                     winner: str | None, front_label: str) -> Figure:
    """The first objective's mean (± std) of every searched architecture against ``x``, ``front``
    as a line (a staircase when it is the two-objective front), the winner as a star and each
    baseline as a labelled marker."""
    first = problem.objectives[0]
    figure, ax = new_figure()
    summary = arch_summary(trials, Problem(objectives=(first, x), constraints=problem.constraints))
    has = {first.metric, x.metric} <= set(summary.columns)
    searched = summary[summary["searched"].astype(bool)] if has else summary.iloc[0:0]
    searched = searched.dropna(subset=[first.metric, x.metric]) if has else searched
    names = _baseline_names(trials, baselines)
    refs = summary[summary["arch"].isin(list(names))].dropna(subset=[first.metric, x.metric]) \
        if has else summary.iloc[0:0]
    if searched.empty and refs.empty:
        ax.text(0.5, 0.5, f"no architecture with both {first.metric} and {x.metric}",
                transform=ax.transAxes, ha="center", va="center", color="0.4")
    _draw_searched(ax, searched, problem, first, x)
    front = front.sort_values(x.metric) if has and not front.empty else front.iloc[0:0]
    if not front.empty:
        draw_front(ax, front, x, first.metric, staircase, "tab:red", front_label)
    top = searched[searched["arch"] == winner] if winner is not None else searched.iloc[0:0]
    if not top.empty:
        ax.scatter(top[x.metric], top[first.metric], s=180, marker="*", color="gold", edgecolors="0.1",
                   lw=0.8, zorder=6, label="winner", gid="winner")
    if x.metric in problem.constraints and not searched.empty:
        ax.axvline(problem.constraints[x.metric], ls=":", lw=1, color="0.4", zorder=1, gid="constraint",
                   label=f"constraint: {x.metric} ≤ {problem.constraints[x.metric]:g}")
    named = _draw_baseline_points(ax, refs, names, first, x)
    xs = pd.concat([searched[x.metric], refs[x.metric]]).astype(float) if has else pd.Series([], dtype=float)
    if len(xs) and xs.min() > 0 and xs.max() / xs.min() > 10:
        log_x(ax)
    ax.set_xlim(ax.get_xlim())  # autoscaled now and frozen, so the names can be placed
    ax.set_ylim(ax.get_ylim())
    marks = pd.concat([front, top])[[x.metric, first.metric]].to_numpy(dtype=float).tolist() if has else []
    _name_points(ax, named, marks)
    if not (searched.empty and refs.empty):
        ax.legend(loc="best", fontsize=8)
    ax.set_xlabel(_label(x))
    ax.set_ylabel(_label(first))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return figure


def _draw_searched(ax: Axes, searched: pd.DataFrame, problem: Problem, first: Objective,
                   x: Objective) -> None:
    """Each searched architecture at its means, ± std bars where repeats measured a spread;
    those whose means break a constraint as light crosses."""
    feasible = np.array([problem.violation(r) <= 0 for r in searched.to_dict(orient="records")], bool)
    for mask, style in ((feasible, {"color": _POINT, "label": "searched architecture (mean)",
                                    "gid": "searched"}),
                        (~feasible, {"color": "0.7", "marker": "x", "label": "breaks a constraint",
                                     "gid": "infeasible"})):
        part = searched[mask]
        if part.empty:
            continue
        xerr, yerr = _errors(part, x.metric), _errors(part, first.metric)
        spread = (xerr > 0) | (yerr > 0)
        if spread.any():
            colour = _REPEAT if style["gid"] == "searched" else "0.75"
            ax.errorbar(part[x.metric][spread], part[first.metric][spread], xerr=xerr[spread],
                        yerr=yerr[spread], fmt="none", ecolor=colour, elinewidth=0.8, capsize=2, zorder=2,
                        gid=f"{style['gid']}-std")
        ax.scatter(part[x.metric], part[first.metric], s=16, zorder=3, **style)


def _draw_baseline_points(ax: Axes, refs: pd.DataFrame, names: Mapping[str, str], first: Objective,
                          x: Objective) -> list[tuple[float, float, float, str, str]]:
    """Each baseline as its own marker with its error bars; returns (x, y, x error, name, colour)
    of each for `_name_points`, which labels them once the axes' scale and limits are final."""
    order = {key: i for i, key in enumerate(names)}
    out = []
    for _, row in refs.iterrows():
        i = order[row["arch"]]
        colour = _BASELINE_COLOURS[i % len(_BASELINE_COLOURS)]
        xerr, yerr = (row.get(f"{m}_std", math.nan) for m in (x.metric, first.metric))
        ax.errorbar([row[x.metric]], [row[first.metric]],
                    xerr=None if pd.isna(xerr) else [xerr], yerr=None if pd.isna(yerr) else [yerr],
                    fmt=_BASELINE_MARKERS[i % len(_BASELINE_MARKERS)], ms=7, color=colour,
                    mec="0.1", mew=0.6, elinewidth=1, capsize=3, zorder=5, gid=f"baseline:{row['arch']}")
        out.append((float(row[x.metric]), float(row[first.metric]), 0.0 if pd.isna(xerr) else float(xerr),
                    str(names[row["arch"]]), colour))
    return out


def _name_points(ax: Axes, points: list[tuple[float, float, float, str, str]],
                 marks: list[tuple[float, float]]) -> None:
    """A name beside each point, clear of its x error bar: right of it where it fits, else left,
    moved up or down by whole lines to overlap as few of the ``marks`` (data points a name must
    not hide), the other points and the names placed before as it can (a thin leader line shows
    whose a moved name is)."""
    from matplotlib.transforms import Bbox

    renderer = ax.figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    reach = 6 * ax.figure.dpi / 72
    centres = [p[:2] for p in points] + list(marks)
    placed = [Bbox.from_extents(x - reach, y - reach, x + reach, y + reach)
              for x, y in ax.transData.transform(centres)] if centres else []
    # Under the markers (zorder 5), over the front and the searched points.
    style = {"textcoords": "offset points", "fontsize": 8, "va": "center", "gid": "baseline-label",
             "zorder": 4.5, "bbox": {"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8}}
    step = 11  # points: one line of 8-point text and its padding
    tries = [(side, k * step) for k in (0, 1, -1, 2, -2, 3, -3, 4, -4) for side in (1, -1)]
    to_points = 72 / ax.figure.dpi
    for px, py, xerr, name, colour in sorted(points, key=lambda p: p[1]):
        centre = ax.transData.transform([(px, py)])[0]
        ends = ax.transData.transform([(px - xerr, py), (px + xerr, py)]) if xerr else [centre, centre]
        gaps = {1: max(9.0, (ends[1][0] - centre[0]) * to_points + 4),
                -1: max(9.0, (centre[0] - ends[0][0]) * to_points + 4)}
        probe = ax.annotate(name, (px, py), xytext=(gaps[1], 0), color=colour, **style)
        others = [b for b in placed if not b.contains(*centre)]
        scores = []
        for side, dy in tries:
            probe.set_horizontalalignment("left" if side > 0 else "right")
            probe.xyann = (gaps[side] * side, dy)
            box = probe.get_window_extent(renderer)
            outside = not (frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0
                           and box.y1 <= frame.y1)
            scores.append(100 * outside + sum(box.overlaps(b) for b in others))
            if scores[-1] == 0:
                break
        side, dy = tries[scores.index(min(scores))]  # the first of the least crowded places
        probe.remove()
        # Drawn again with what was found; a leader line where it had to move off its point's line.
        arrow = {"arrowstyle": "-", "color": colour, "lw": 0.6, "shrinkA": 0, "shrinkB": 4} if dy else None
        label = ax.annotate(name, (px, py), xytext=(gaps[side] * side, dy), color=colour,
                            ha="left" if side > 0 else "right", arrowprops=arrow, **style)
        placed.append(label.get_window_extent(renderer))


def tradeoff_figure(trials: pd.DataFrame, problem: Problem, x: str = "latency_ms", title: str = "",
                    baselines: Mapping[str, str] | None = None, winner: str | None = None) -> Figure:
    """The figure of `tradeoff_plot`."""
    first, cost = problem.objectives[0], _objective(problem, x)
    pair = Problem(objectives=(first, cost), constraints=problem.constraints)
    return _tradeoff_figure(trials, problem, cost, pareto_rows(trials, pair), True,
                            title or f"{first.metric} against {x}", baselines, winner,
                            f"Pareto front (best {first.metric} for its {x})")


def tradeoff_plot(trials: pd.DataFrame, problem: Problem, path: Path, x: str = "latency_ms",
                  title: str = "", baselines: Mapping[str, str] | None = None,
                  winner: str | None = None) -> None:
    """The first objective's mean (± std where repeated) of every searched architecture against
    ``x``, the front of the two, the ``winner`` (architecture key) as a star and each baseline
    (key -> name; None: every baseline of the table) as a labelled marker. Log x when x spans
    more than a factor of ten."""
    save_figure(tradeoff_figure(trials, problem, x, title, baselines, winner), path)


def pareto_figure(trials: pd.DataFrame, problem: Problem, title: str = "",
                  baselines: Mapping[str, str] | None = None, winner: str | None = None) -> Figure:
    """The figure of `pareto_plot`."""
    second = problem.objectives[1]
    # With more than two objectives the front's projection on two of them is no staircase.
    return _tradeoff_figure(trials, problem, second, pareto_rows(trials, problem),
                            len(problem.objectives) == 2, title or "Pareto front", baselines, winner,
                            "Pareto front")


def pareto_plot(trials: pd.DataFrame, problem: Problem, path: Path, title: str = "",
                baselines: Mapping[str, str] | None = None, winner: str | None = None) -> None:
    """The first two objectives of every searched architecture (means, ± std where repeated), the
    Pareto front highlighted, the ``winner`` as a star and baselines as labelled markers."""
    save_figure(pareto_figure(trials, problem, title, baselines, winner), path)


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
    save_figure(figure, path)


def run_plots(trials: pd.DataFrame, problem: Problem, folder: Path, title: str = "",
              baselines: Mapping[str, str] | None = None, winner: str | None = None,
              min_repeats: int = 1) -> None:
    """A run's plots in ``folder``: progress, the Pareto front with several objectives, accuracy against
    latency when latency is known but not an objective (else the front shows it), and `int8_plot`."""
    folder = Path(folder)
    progress_plot(trials, problem, folder / "progress.png", title=title, baselines=baselines,
                  min_repeats=min_repeats)
    objectives = [o.metric for o in problem.objectives]
    if len(objectives) > 1:
        pareto_plot(trials, problem, folder / "pareto.png", title=title, baselines=baselines, winner=winner)
    if "latency_ms" in trials and "latency_ms" not in objectives:
        tradeoff_plot(trials, problem, folder / "tradeoff.png", title=title, baselines=baselines, winner=winner)
    int8_plot(trials, problem, folder / "int8.png", title=title, winner=winner)
