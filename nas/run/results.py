"""The leaderboard of every run in a results folder: one row per architecture and run, best first."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from nas.run.files import read_leaderboard
from nas.run.problem import default_direction
from search_spaces.errors import ConfigError, describe_choices

# Columns of a leaderboard row that are names or bookkeeping, not metrics to average.
_FIRST = ("trial", "space", "strategy", "evaluator", "seed", "timestamp", "latency_source")


def per_arch(frame: pd.DataFrame, spread: tuple[str, ...] = ("accuracy",)) -> pd.DataFrame:
    """One row per (run, architecture): metrics averaged over its ok evaluations, ``<m>_std`` for
    the ``spread`` metrics, ``n`` ok evaluations, ``stage`` baseline when it was a baseline."""
    if frame.empty or "arch" not in frame or "run_id" not in frame:
        return frame
    keys = ["run_id", "arch"]
    status = frame["status"] if "status" in frame else pd.Series("ok", index=frame.index)
    ok = frame[status == "ok"]
    grouped = frame.groupby(keys, sort=False)
    out = grouped[[c for c in frame.columns if c not in keys]].first()
    out["status"] = grouped["status"].agg(lambda s: "ok" if (s == "ok").any() else s.iloc[0]) \
        if "status" in frame else "ok"
    if "stage" in frame:
        out["stage"] = grouped["stage"].agg(lambda s: "baseline" if (s == "baseline").any() else "search")
    skip = set(keys) | set(_FIRST) | {"repeat", "stage", "status", "error"}
    numeric = [c for c in ok.columns if c not in skip and ok[c].dtype.kind in "biuf"]
    ok_groups = ok.groupby(keys, sort=False)
    if numeric and not ok.empty:
        means = ok_groups[numeric].mean()
        out.loc[means.index, numeric] = means
        for metric in spread:
            if metric in numeric:
                out[f"{metric}_std"] = ok_groups[metric].std(ddof=1)
    out["n"] = ok_groups.size().reindex(out.index).fillna(0).astype(int)
    out = out.drop(columns=[c for c in ("repeat",) if c in out]).reset_index()
    return out[[c for c in frame.columns if c in out] + [c for c in out.columns if c not in frame]]


def leaderboard(
    out: str | Path = "results", top: int | None = None, sort: str | None = None,
    space: str | None = None, repeats: bool = False,
) -> pd.DataFrame:
    """Every evaluated architecture of every run in ``out``, best first.

    ``sort``: a column, optionally ``col:max``/``col:min`` (default: accuracy, larger first;
    cost metrics such as latency_ms, params, macs smaller first). ``space`` keeps one space's rows.
    An architecture evaluated several times in a run is one row with its mean, ``accuracy_std``
    and ``n``; ``repeats=True`` lists every evaluation instead.
    """
    frame = read_leaderboard(out)
    if space is not None:
        frame = frame[frame.get("space", pd.Series(dtype=str)) == space]
    column, _, direction = (sort or "").partition(":")
    if not repeats:
        frame = per_arch(frame, spread=tuple(dict.fromkeys(("accuracy", column))) if column else ("accuracy",))
    if not column and "accuracy" in frame and frame["accuracy"].notna().any():
        column = "accuracy"
    if column:
        if column not in frame:
            raise ConfigError(describe_choices("leaderboard column", column, list(frame.columns)))
        direction = direction or default_direction(column)
        if direction not in ("max", "min"):
            raise ConfigError(f"sort: direction must be max or min, got {direction!r}")
        frame = frame.sort_values(column, ascending=direction == "min", na_position="last", kind="stable")
    if top is not None:
        if top < 1:
            raise ConfigError(f"top: must be >= 1, got {top}")
        frame = frame.head(top)
    return frame.reset_index(drop=True)
