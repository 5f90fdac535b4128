"""Float32 against int8 in a ``quantize=int8`` run: per candidate, both accuracies and the drop,
both latencies and their ratio, the failures to quantize; and the figure of both Pareto fronts.

Like the rest of the report, a candidate is the mean over its ok evaluations (repeats are other
training seeds); the drop is averaged per evaluation, since the float32 and int8 scores of one
evaluation come from the same trained network.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from nas.report.figures import draw_front, log_x, new_figure, save_figure
from nas.run.problem import arch_summary, pareto_rows
from nas.strategies.base import Objective, Problem

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# (accuracy, latency) of each precision, and its colour in the figure.
FLOAT32 = (Objective("accuracy", "max"), Objective("latency_ms", "min"), "tab:blue")
INT8 = (Objective("accuracy_int8", "max"), Objective("latency_int8_ms", "min"), "tab:orange")
METRICS = ("accuracy", "accuracy_int8", "latency_ms", "latency_int8_ms")
QUANTIZE_ERROR = "quantize:"  # how the error of a network that cannot be quantized starts


def has_int8(trials: pd.DataFrame) -> bool:
    """Whether the trials carry int8 accuracy and latency (a ``quantize=int8`` run)."""
    return {"accuracy_int8", "latency_int8_ms"} <= set(trials.columns)


def _searched(trials: pd.DataFrame) -> pd.DataFrame:
    """The rows of candidates the search proposed (baselines left out)."""
    if "stage" not in trials:
        return trials
    return trials[~trials["stage"].eq("baseline")]


def quantize_failures(trials: pd.DataFrame) -> pd.DataFrame:
    """One row per architecture with an evaluation that failed to quantize: ``arch``, ``trial``
    (its first such evaluation), ``failures`` (how many) and ``error`` (the first one's)."""
    columns = ["arch", "trial", "failures", "error"]
    if not {"arch", "status", "error"} <= set(trials.columns):
        return pd.DataFrame(columns=columns)
    errors = trials["error"].fillna("").astype(str)
    failed = trials[trials["status"].ne("ok") & errors.str.startswith(QUANTIZE_ERROR)]
    if failed.empty:
        return pd.DataFrame(columns=columns)
    trial = failed["trial"] if "trial" in failed else pd.Series(failed.index, index=failed.index)
    return (failed.assign(trial=trial).groupby("arch", sort=False)
            .agg(trial=("trial", "min"), failures=("arch", "size"), error=("error", "first"))
            .reset_index()[columns])


def candidate_rows(trials: pd.DataFrame, archs: Sequence[str]) -> list[dict[str, Any]]:
    """For each of ``archs``: ``n`` (ok evaluations with both accuracies), the means of
    `METRICS` with ``accuracy_std`` and ``accuracy_int8_std``, ``drop`` (float32 − int8 accuracy,
    in points) with ``drop_std``, ``ratio`` (int8 / float32 latency, of the means), and
    ``failures`` and ``error`` where it failed to quantize."""
    present = [m for m in METRICS if m in trials]
    ok = trials[trials["status"].eq("ok")] if "status" in trials else trials
    # A candidate counts where both accuracies were measured: the drop needs the pair.
    ok = ok.dropna(subset=["accuracy", "accuracy_int8"]) if {"accuracy", "accuracy_int8"} <= set(ok) \
        else ok.iloc[0:0]
    values = ok[["arch", *present]].assign(**{m: pd.to_numeric(ok[m], errors="coerce") for m in present})
    if {"accuracy", "accuracy_int8"} <= set(present):
        values = values.assign(drop=values["accuracy"] - values["accuracy_int8"])
    groups = values.groupby("arch", sort=False)
    means, stds, counts = groups.mean(), groups.std(ddof=1), groups.size()
    failures = quantize_failures(trials).set_index("arch")
    rows = []
    for arch in archs:
        row: dict[str, Any] = {"arch": arch, "n": int(counts.get(arch, 0))}
        if arch in means.index:
            row |= means.loc[arch].to_dict()
            row |= {f"{m}_std": stds.loc[arch, m] for m in ("accuracy", "accuracy_int8", "drop") if m in stds}
        if pd.notna(row.get("latency_ms")) and row["latency_ms"] > 0 and pd.notna(row.get("latency_int8_ms")):
            row["ratio"] = row["latency_int8_ms"] / row["latency_ms"]
        if arch in failures.index:
            row |= {"failures": int(failures.loc[arch, "failures"]), "error": failures.loc[arch, "error"]}
        rows.append(row)
    return rows


def overview(trials: pd.DataFrame) -> dict[str, Any]:
    """Over the searched candidates: ``ok`` (those with both accuracies), ``drop`` and ``ratio``
    (medians of their means; NaN without any) and ``failed`` (those that failed to quantize)."""
    searched = _searched(trials)
    archs = list(searched["arch"].drop_duplicates()) if "arch" in searched else []
    rows = [r for r in candidate_rows(searched, archs) if r["n"]]
    median = {k: float(np.median([r[k] for r in rows if k in r and not pd.isna(r[k])] or [np.nan]))
              for k in ("drop", "ratio")}
    return {"ok": len(rows), "failed": len(quantize_failures(searched)), **median}


# -- figure ------------------------------------------------------------------------------------------
def int8_figure(trials: pd.DataFrame, problem: Problem, title: str = "",
                winner: str | None = None) -> Figure:
    """The figure of `int8_plot`."""
    from matplotlib.collections import LineCollection


    figure, ax = new_figure()
    both = Problem(objectives=(FLOAT32[0], FLOAT32[1], INT8[0], INT8[1]), constraints=problem.constraints)
    summary = arch_summary(_searched(trials), both)
    if not set(METRICS) <= set(summary.columns):
        summary = pd.DataFrame(columns=["arch", *METRICS])
    means = summary.dropna(subset=list(METRICS))
    if means.empty:
        ax.text(0.5, 0.5, "no network with both float32 and int8 metrics", transform=ax.transAxes,
                ha="center", va="center", color="0.4")
    # One thin line per network from its float32 to its int8 point: which int8 point is whose.
    segments = [[(r.latency_ms, r.accuracy), (r.latency_int8_ms, r.accuracy_int8)]
                for r in means.itertuples()]
    ax.add_collection(LineCollection(segments, colors="0.75", linewidths=0.7, zorder=1, gid="pairs",
                                     label="one network, float32 to int8"))
    for (accuracy, latency, colour), name in ((FLOAT32, "float32"), (INT8, "int8")):
        ax.scatter(means[latency.metric], means[accuracy.metric], s=16, color=colour, alpha=0.45, lw=0,
                   zorder=2, label=f"{name} (mean per network)", gid=f"{name}-points")
        front = pareto_rows(trials, Problem(objectives=(accuracy, latency), constraints=problem.constraints))
        if not front.empty:
            draw_front(ax, front.sort_values(latency.metric), latency, accuracy.metric, True, colour,
                       f"{name} Pareto front", gid=f"{name}-front")
        top = means[means["arch"] == winner]
        label = "winner" if name == "int8" and len(top) else None  # one legend entry for its two stars
        ax.scatter(top[latency.metric], top[accuracy.metric], s=150, marker="*", color="gold",
                   edgecolors="0.1", lw=0.8, zorder=6, label=label, gid=f"{name}-winner")
    latencies = pd.concat([means["latency_ms"], means["latency_int8_ms"]]).astype(float)
    if len(latencies) and latencies.min() > 0 and latencies.max() / latencies.min() > 10:
        log_x(ax)
    if not means.empty:
        # Below the axes: inside, it hides the points of a large front wherever it goes.
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, fontsize=8, frameon=False)
    ax.set_xlabel("latency in ms (lower is better)")
    ax.set_ylabel("accuracy (higher is better)")
    ax.set_title(f"{title}: float32 and int8" if title else "float32 and int8")
    ax.grid(alpha=0.3)
    return figure


def int8_plot(trials: pd.DataFrame, problem: Problem, path: Path, title: str = "",
              winner: str | None = None) -> bool:
    """Accuracy against latency of every searched network in float32 and in int8 (means), each
    precision's Pareto front among the feasible ones, a thin line joining each network's two
    points, the ``winner`` as stars; written only when the trials have int8 metrics (returns
    whether it was)."""
    if not has_int8(trials):
        return False

    save_figure(int8_figure(trials, problem, title, winner), Path(path))
    return True
