"""``nas report RUN``: one self-contained HTML page per run (winner, baselines, top architectures,
plots, failures, settings).

Everything the page shows is read back from the run's own files (``config.yaml``, ``trials.csv``,
``best.yaml`` and the PNG plots, inlined as data URIs), so a report can be made for a finished,
stopped or crashed run, and the page can be mailed or archived alone. Architectures are shown by
their means over repeated evaluations with ± std and their count, never by a single draw.
"""
from __future__ import annotations

import base64
import html
import io
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from nas.report import int8
from nas.report.archplot import arch_figure
from nas.report.summary import describe_bound
from nas.run.files import atomic_write_text, read_table
from nas.run.folder import RunDir
from nas.run.latencybound import saved_constraints
from nas.run.problem import (
    arch_summary,
    best_row,
    noise_std,
    parse_objectives,
)
from nas.select.selection import Selection
from nas.strategies.base import Problem
from search_spaces.arch import Architecture
from search_spaces.cost import cost
from search_spaces.errors import ConfigError, NasError

log = logging.getLogger(__name__)

# File and heading of each plot a run may have; {first} is the first objective's name.
PLOTS = (("progress.png", "Progress"), ("tradeoff.png", "{first} against latency"),
         ("pareto.png", "Pareto front"), ("alphas.png", "DARTS architecture weights"))
STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:70em;color:#222}
h1{font-size:1.5em} h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.9em;margin:.5em 0}
td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left}
th{background:#f4f4f4} td.arch{font-family:monospace;word-break:break-all;max-width:40em}
img{max-width:100%;border:1px solid #eee} .muted{color:#777}
code.arch{font-size:.85em;word-break:break-all}
img.arch{max-width:min(100%,60em)}
"""


def _table(frame: pd.DataFrame, arch_columns: Sequence[str] = ("arch", "error")) -> str:
    """An HTML table of ``frame``; long text columns wrap in monospace."""
    if frame.empty:
        return '<p class="muted">none</p>'
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for _, row in frame.iterrows():
        cells = []
        for column in frame.columns:
            value = row[column]
            text = "" if value is None or (isinstance(value, float) and pd.isna(value)) else _number(value)
            css = ' class="arch"' if column in arch_columns else ""
            cells.append(f"<td{css}>{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _number(value: Any) -> str:
    if isinstance(value, float):
        if value.is_integer() and abs(value) >= 1000:
            return f"{int(value):,}"
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 1000:
        return f"{value:,}"
    return str(value)


def _settings(config: Mapping[str, Any]) -> pd.DataFrame:
    """The run's settings as key/value rows (groups flattened to ``group.key``)."""
    rows = []
    for key, value in config.items():
        if isinstance(value, Mapping):
            rows += [(f"{key}.{k}", v) for k, v in value.items() if v is not None]
        elif value is not None:
            rows.append((key, value))
    return pd.DataFrame([(k, str(v)) for k, v in rows], columns=["setting", "value"])


def _image(path: Path) -> str:
    return _png(path.read_bytes(), path.name)


def _png(data: bytes, alt: str, css: str = "") -> str:
    """An inline <img> of PNG bytes."""
    encoded = base64.b64encode(data).decode("ascii")
    klass = f' class="{css}"' if css else ""
    return f'<img{klass} alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'


def _places(stds: Sequence[Any]) -> int | None:
    """Decimal places that show the typical (median) positive std to two significant digits (None
    without one), so that a column of means shares one precision that its noise justifies."""
    values = [float(v) for v in stds if v is not None and not pd.isna(v) and 0 < float(v) < math.inf]
    if not values:
        return None
    return min(6, max(0, 1 - math.floor(math.log10(float(np.median(values))))))


def _mean_std(mean: Any, std: Any = None, n: Any = None, places: int | None = None) -> str:
    """``26.5 ± 6.7 (n=3)``; ``places`` defaults to what the std itself needs (see `_places`)."""
    if mean is None or pd.isna(mean):
        return ""
    count = f" (n={int(n)})" if n is not None and not pd.isna(n) else ""
    places = _places([std]) if places is None else places
    if places is None:
        return f"{_number(float(mean))}{count}"
    spread = f" ± {float(std):.{places}f}" if _places([std]) is not None else ""
    return f"{float(mean):.{places}f}{spread}{count}"


def _mean_std_column(rows: Sequence[Mapping[str, Any]], metric: str, count: bool = True) -> list[str]:
    """``metric`` ± ``<metric>_std`` (n) of each row, all with the same decimal places."""
    places = _places([r.get(f"{metric}_std") for r in rows])
    return [_mean_std(r.get(metric), r.get(f"{metric}_std"), r.get("n") if count else None, places)
            for r in rows]


def _signed(text: str) -> str:
    """A difference with its sign (+1.2 ± 0.8)."""
    return text if not text or text.startswith("-") else "+" + text


def _read_best(rdir: RunDir) -> dict[str, Any]:
    """``best.yaml``, or {} when the run has none yet or it cannot be read."""
    try:
        loaded = yaml.safe_load(rdir.best.read_text(encoding="utf-8")) if rdir.best.is_file() else None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        log.warning("run %s: cannot read %s (%s); the report computes the winner itself", rdir.run_id,
                    rdir.best, " ".join(str(exc).split()))
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _problem(config: Mapping[str, Any]) -> Problem:
    """Objectives and constraints as the run had them (constraints dropped if unreadable)."""
    objectives = parse_objectives(config.get("objectives") or ["accuracy"])
    try:
        constraints = saved_constraints(config)
    except (ConfigError, TypeError, AttributeError):
        constraints = {}
    return Problem(objectives=objectives, constraints=constraints)


def _winner(best: Mapping[str, Any], trials: pd.DataFrame, problem: Problem,
            config: Mapping[str, Any]) -> dict[str, Any] | None:
    """best.yaml's winner, or, without one, the winner computed from the trials as the run does."""
    if isinstance(best.get("best"), Mapping) and best["best"].get("arch") is not None:
        return dict(best["best"])
    try:
        repeats = Selection.from_options(config.get("select")).winner_repeats
    except (ConfigError, TypeError):
        repeats = 1
    return best_row(trials, problem, repeats)


def _noise_sentence(best: Mapping[str, Any], trials: pd.DataFrame, metric: str) -> str:
    """What counts as a real difference: best.yaml's noise entry, else the pooled std of repeats."""
    noise = best.get("noise") if isinstance(best.get("noise"), Mapping) else None
    if noise and noise.get("std") is not None:
        metric = str(noise.get("metric") or metric)
        std, dof = float(noise["std"]), noise.get("dof")
    else:
        pooled = noise_std(trials, metric)
        if pooled is None:
            return ""
        std, dof = pooled
    source = f"seed-to-seed std {std:.2g}" + (f" from {int(dof)} repeats" if dof is not None else "")
    within = noise.get("within") if noise else None
    if within is None:
        return f"{metric.capitalize()}: {source}."
    unit = " points" if metric == "accuracy" else ""
    what = "differences" if metric == "accuracy" else f"differences in {metric}"
    return f"{what.capitalize()} under ~{float(within):.2g}{unit} are within noise ({source})."


def _winner_picture(arch: str, params: Any, title: str) -> str:
    """The winner drawn by `arch_figure`, as an inline PNG; '' when the architecture is not a
    network string (tabular spaces) or cannot be drawn. ``params``: what the run measured."""
    try:
        network = Architecture.parse(arch)
        figure = arch_figure(network, title=title)
        drawn = cost(network).params
    except Exception as exc:  # noqa: BLE001 - the picture is an extra; the page is made without it
        log.debug("no picture of %s: %s", arch, exc)
        return ""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    picture = _png(buffer.getvalue(), "the winner's architecture", "arch")
    if params is None or pd.isna(params) or int(params) == drawn:
        return picture
    # The picture counts a 1000-class head; a run on another data set measured its own.
    return picture + ('<p class="muted">The picture counts parameters and MACs with a 1000-class '
                      "classifier; the table gives those of the network the run trained.</p>")


def _winner_section(winner: Mapping[str, Any] | None, best: Mapping[str, Any], trials: pd.DataFrame,
                    problem: Problem, run_id: str) -> str:
    """The winner's string, its means ± std, the noise and its picture."""
    first = problem.objectives[0]
    parts = ["<h2>Winner</h2>"]
    if not winner:
        return parts[0] + '<p class="muted">no successful evaluation yet</p>'
    arch = str(winner["arch"])
    parts.append(f'<p><code class="arch">{html.escape(arch)}</code></p>')
    # The count once, with the first objective.
    row = {o.metric: _mean_std_column([winner], o.metric, i == 0)[0] for i, o in enumerate(problem.objectives)}
    row |= {m: winner.get(m) for m in ("latency_ms", "params", "macs") if m not in row}
    parts.append(_table(pd.DataFrame([{k: v for k, v in row.items() if v not in (None, "")}])))
    sentence = _noise_sentence(best, trials, first.metric)
    if sentence:
        parts.append(f"<p>{html.escape(sentence)}</p>")
    parts.append(_winner_picture(arch, winner.get("params"), f"winner of run {run_id}"))
    return "\n".join(p for p in parts if p)


def _baseline_rows(best: Mapping[str, Any], summary: pd.DataFrame, winner: Mapping[str, Any] | None,
                   problem: Problem, config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """best.yaml's baselines, or, without them, the baseline architectures of the trials."""
    listed = best.get("baselines")
    if isinstance(listed, list):
        return [dict(b) for b in listed if isinstance(b, Mapping)]
    if summary.empty:
        return []
    first = problem.objectives[0].metric
    named = config.get("baselines") if isinstance(config.get("baselines"), list) else []
    rows = []
    for i, (_, ref) in enumerate(summary[summary["baseline"].astype(bool)].iterrows()):
        row = {k: v for k, v in ref.items() if not (isinstance(v, float) and pd.isna(v))}
        row["name"] = ref["arch"] if ref["arch"] in named else f"baseline {i + 1}"
        if winner and winner.get(first) is not None and first in row:
            row["difference"] = float(winner[first]) - float(row[first])
        rows.append(row)
    return rows


def _baselines_section(rows: list[dict[str, Any]], problem: Problem, best: Mapping[str, Any]) -> str:
    """One row per baseline: its means ± std and the winner's difference to it; under a baseline's
    latency bound, where the bound came from and the verdict."""
    first = problem.objectives[0].metric
    head = "<h2>Baselines</h2>"
    if not rows:
        return head + '<p class="muted">none (run with baselines=auto or a list of reference names)</p>'
    table = pd.DataFrame({
        "baseline": [r.get("name", "") for r in rows],
        first: _mean_std_column(rows, first),
        **{m: [r.get(m) for r in rows] for m in ("latency_ms", "params", "macs") if m != first},
        f"winner − baseline ({first})": [_signed(t) for t in _mean_std_column(rows, "difference", False)],
    }).dropna(axis=1, how="all")
    note = ('<p class="muted">Each baseline is evaluated by the same evaluator as the search, as '
            "often as the winner; a difference less than about twice its ± may be noise.</p>")
    bound = "".join(f"<p>{html.escape(line)}</p>" for line in describe_bound(best))
    return head + _table(table) + note + bound


def _ranked(summary: pd.DataFrame, problem: Problem, top: int) -> pd.DataFrame:
    """The ``top`` searched architectures by the mean of the first objective, best first."""
    first = problem.objectives[0]
    searched = summary[summary["searched"].astype(bool)] if "searched" in summary else summary
    if first.metric not in searched:
        return searched.iloc[0:0]
    return searched.dropna(subset=[first.metric]).sort_values(
        first.metric, ascending=first.direction == "min", kind="stable").head(top)


def _top_section(summary: pd.DataFrame, problem: Problem, winner: str | None, top: int) -> str:
    """The ``top`` searched architectures by the mean of the first objective."""
    first = problem.objectives[0]
    head = f"<h2>Top {top} architectures by mean {html.escape(first.metric)}</h2>"
    ranked = _ranked(summary, problem, top)
    if ranked.empty:
        return head + '<p class="muted">no successful evaluation yet</p>'
    records = ranked.to_dict(orient="records")
    table = pd.DataFrame({"": ["★ winner" if r["arch"] == winner else "" for r in records],
                          "trial": ranked["trial"].tolist()})
    for i, objective in enumerate(problem.objectives):  # the count once, with the first objective
        table[objective.metric] = _mean_std_column(records, objective.metric, i == 0)
    for metric in ("latency_ms", "params", "macs"):
        if metric in ranked and metric not in table:
            table[metric] = ranked[metric].tolist()
    table["arch"] = ranked["arch"].tolist()
    return head + _table(table if table[""].any() else table.drop(columns=[""]))


def _int8_section(trials: pd.DataFrame, summary: pd.DataFrame, problem: Problem, winner: str | None,
                  top: int, figure: Path) -> str:
    """Float32 against int8 for the top architectures, the winner and those that failed to quantize
    (at most ``top`` of them), below the medians over all candidates and above ``figure``."""
    counts = int8.overview(trials)
    failed = int8.quantize_failures(trials[~trials["stage"].eq("baseline")] if "stage" in trials else trials)
    archs = list(dict.fromkeys([*_ranked(summary, problem, top)["arch"], *([winner] if winner else []),
                                *failed["arch"].head(top)]))
    rows = int8.candidate_rows(trials, archs)
    medians = [f"int8 lost a median {counts['drop']:.3g} points of accuracy" if counts["ok"] else "",
               f"ran at a median {counts['ratio']:.2f}× the float32 latency" if counts["ratio"] > 0 else ""]
    medians = " and ".join(m for m in medians if m)
    text = (f"Over {counts['ok']} candidate{'s' if counts['ok'] != 1 else ''}, {medians}"
            if counts["ok"] else "No candidate has both float32 and int8 results")
    text += f"; {counts['failed']} failed to quantize."
    if len(failed) > top:
        text += f" The table lists the first {top} of them."
    places = _places([r.get(m) for r in rows for m in ("accuracy_std", "accuracy_int8_std")])
    trial_of = dict(zip(summary.get("arch", []), summary.get("trial", [])))
    trial_of |= dict(zip(failed["arch"], failed["trial"]))
    table = pd.DataFrame({
        "": ["★ winner" if r["arch"] == winner else "" for r in rows],
        "trial": [trial_of.get(r["arch"]) for r in rows],
        "accuracy float32": [_mean_std(r.get("accuracy"), r.get("accuracy_std"), r["n"] or None, places)
                             for r in rows],
        "accuracy int8": [_mean_std(r.get("accuracy_int8"), r.get("accuracy_int8_std"), None, places)
                          for r in rows],
        "drop (points)": _mean_std_column(rows, "drop", False),
        "latency float32 (ms)": [r.get("latency_ms") for r in rows],
        "latency int8 (ms)": [r.get("latency_int8_ms") for r in rows],
        "int8 / float32 latency": [f"{r['ratio']:.2f}×" if "ratio" in r else "" for r in rows],
        "failed to quantize": [f"{r['error']} ({r['failures']} of {r['failures'] + r['n']} evaluations)"
                               if r.get("error") else "" for r in rows],
        "arch": archs,
    })
    if not table[""].any():
        table = table.drop(columns=[""])
    if not table["failed to quantize"].any():
        table = table.drop(columns=["failed to quantize"])
    note = ('<p class="muted">Means ± std over each network\'s ok evaluations (n, the same for both '
            "accuracies); the drop is float32 − int8 accuracy of one trained network, averaged over its "
            "evaluations; the latency ratio is that of the mean latencies.</p>")
    picture = f"<h3>Accuracy against latency</h3>{_image(figure)}" if figure.is_file() else ""
    return (f"<h2>Float32 and int8</h2><p>{html.escape(text)}</p>"
            + _table(table, ("arch", "failed to quantize")) + (note if rows else "") + picture)


def _load(rdir: RunDir) -> tuple[dict[str, Any], pd.DataFrame]:
    if not rdir.config.is_file():
        raise NasError(f"run {rdir.run_id}: no config.yaml in {rdir.path}; is it a run folder?")
    try:
        config = yaml.safe_load(rdir.config.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise NasError(f"run {rdir.run_id}: cannot read {rdir.config} ({' '.join(str(exc).split())})") from None
    trials = read_table(rdir.trials) if rdir.trials.is_file() else pd.DataFrame(columns=["trial", "arch", "status"])
    return config, trials


def _overview(config: Mapping[str, Any], trials: pd.DataFrame, problem: Problem) -> str:
    """What ran: space, strategy, evaluator, evaluations by status and stage, objectives."""
    status = trials["status"].value_counts() if "status" in trials else pd.Series(dtype=int)
    stages = trials["stage"].value_counts() if "stage" in trials else pd.Series(dtype=int)
    rows = [
        ("space", config.get("space")), ("strategy", (config.get("strategy") or {}).get("name")),
        ("evaluator", (config.get("evaluator") or {}).get("name")), ("evaluations", len(trials)),
        *[(f"status {k}", int(v)) for k, v in status.items()],
        *[(f"stage {k}", int(v)) for k, v in stages.items()],
        ("objectives", ", ".join(f"{o.metric}:{o.direction}" for o in problem.objectives)),
    ]
    if "wall_s" in trials and len(trials):
        rows.append(("evaluation time (sum)", f"{float(trials['wall_s'].sum()):.1f} s"))
    return _table(pd.DataFrame([(k, "" if v is None else str(v)) for k, v in rows], columns=["", "value"]))


def _plots(rdir: RunDir, problem: Problem) -> str:
    """The run's PNG plots, inlined."""
    first = problem.objectives[0].metric
    plots = [(rdir.path / name, title.format(first=first.capitalize()))
             for name, title in PLOTS if (rdir.path / name).is_file()]
    metrics = [o.metric for o in problem.objectives]
    if metrics[1:] == ["latency_ms"] and (rdir.path / "tradeoff.png").is_file():
        # Both plots draw the first objective against latency with the same front: show one.
        plots = [(path, title + ": the Pareto front" if path.name == "tradeoff.png" else title)
                 for path, title in plots if path.name != "pareto.png"]
    if not plots:
        return ""
    return "<h2>Plots</h2>" + "".join(f"<h3>{html.escape(title)}</h3>{_image(path)}" for path, title in plots)


def _failures(trials: pd.DataFrame) -> str:
    """Failed and stopped evaluations, counted by reason and listed."""
    failed = trials[trials["status"] != "ok"] if "status" in trials else trials.head(0)
    head = f"<h2>Failures and early stops ({len(failed)})</h2>"
    if not len(failed):
        return head + '<p class="muted">none</p>'
    reasons = failed["error"].fillna("").astype(str).str.split(":").str[0].replace("", "(no reason)")
    counts = reasons.value_counts().rename_axis("reason").reset_index(name="trials")
    columns = [c for c in ("trial", "stage", "status", "error", "arch") if c in failed]
    return head + _table(counts) + _table(failed[columns])


def render(rdir: RunDir, top: int = 10) -> str:
    """The report page of a run, as HTML text."""
    config, trials = _load(rdir)
    problem = _problem(config)
    best = _read_best(rdir)
    summary = arch_summary(trials, problem)
    winner = _winner(best, trials, problem, config)
    quantized = isinstance(config.get("evaluator"), Mapping) and config["evaluator"].get("quantize") == "int8"
    parts = [
        f"<h1>nas run {html.escape(rdir.run_id)}</h1>",
        _overview(config, trials, problem),
        _winner_section(winner, best, trials, problem, rdir.run_id),
        _baselines_section(_baseline_rows(best, summary, winner, problem, config), problem, best),
        _top_section(summary, problem, winner.get("arch") if winner else None, top),
        _int8_section(trials, summary, problem, winner.get("arch") if winner else None, top,
                      rdir.path / "int8.png") if int8.has_int8(trials) or quantized else "",
        _plots(rdir, problem),
        _failures(trials),
        "<h2>Settings</h2>" + _table(_settings(config)),
    ]
    body = "\n".join(p for p in parts if p)
    title = html.escape(f"nas run {rdir.run_id}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
            f"<style>{STYLE}</style></head><body>{body}</body></html>\n")


def write_report(rdir: RunDir, path: str | Path | None = None, top: int = 10) -> Path:
    """Write the report page (default ``<run dir>/report.html``); return its path."""
    target = Path(path) if path is not None else rdir.path / "report.html"
    atomic_write_text(target, render(rdir, top))
    log.info("report of run %s: %s", rdir.run_id, target)
    return target
