"""``nas report RUN``: one self-contained HTML page per run (config, best, plots, failures).

Everything the page shows is read back from the run's own files (``config.yaml``, ``trials.csv``,
``best.yaml`` and the PNG plots, inlined as data URIs), so a report can be made for a finished,
stopped or crashed run, and the page can be mailed or archived alone.
"""
from __future__ import annotations

import base64
import html
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from nas.problem import parse_objectives
from nas.store import RunDir, atomic_write_text, read_table
from search_spaces.errors import NasError

log = logging.getLogger(__name__)

PLOTS = (("progress.png", "Progress"), ("pareto.png", "Pareto front"), ("alphas.png", "DARTS architecture weights"))
STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:70em;color:#222}
h1{font-size:1.5em} h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.9em;margin:.5em 0} td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left}
th{background:#f4f4f4} td.arch{font-family:monospace;word-break:break-all;max-width:40em}
img{max-width:100%;border:1px solid #eee} .muted{color:#777}
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
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'


def _load(rdir: RunDir) -> tuple[dict[str, Any], pd.DataFrame]:
    import yaml

    if not rdir.config.is_file():
        raise NasError(f"run {rdir.run_id}: no config.yaml in {rdir.path}; is it a run folder?")
    try:
        config = yaml.safe_load(rdir.config.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise NasError(f"run {rdir.run_id}: cannot read {rdir.config} ({' '.join(str(exc).split())})") from None
    trials = read_table(rdir.trials) if rdir.trials.is_file() else pd.DataFrame(columns=["trial", "arch", "status"])
    return config, trials


def render(rdir: RunDir, top: int = 10) -> str:
    """The report page of a run, as HTML text."""
    config, trials = _load(rdir)
    objectives = parse_objectives(config.get("objectives") or ["accuracy"])
    first = objectives[0]
    status = trials["status"].value_counts() if "status" in trials else pd.Series(dtype=int)
    parts = [f"<h1>nas run {html.escape(rdir.run_id)}</h1>"]
    summary = [
        ("space", config.get("space")), ("strategy", (config.get("strategy") or {}).get("name")),
        ("evaluator", (config.get("evaluator") or {}).get("name")), ("evaluations", len(trials)),
        *[(f"status {k}", int(v)) for k, v in status.items()],
        ("objectives", ", ".join(f"{o.metric}:{o.direction}" for o in objectives)),
    ]
    if "wall_s" in trials and len(trials):
        summary.append(("evaluation time (sum)", f"{float(trials['wall_s'].sum()):.1f} s"))
    parts.append(_table(pd.DataFrame([(k, "" if v is None else str(v)) for k, v in summary],
                                     columns=["", "value"])))

    ok = trials[trials["status"] == "ok"] if "status" in trials else trials
    parts.append(f"<h2>Top {top} by {html.escape(first.metric)}</h2>")
    if first.metric in ok and len(ok):
        best = ok.sort_values(first.metric, ascending=first.direction == "min", kind="stable").head(top)
        shown = [c for c in ("trial", *[o.metric for o in objectives], "accuracy", "latency_ms", "params",
                             "macs", "wall_s", "arch") if c in best]
        parts.append(_table(best[list(dict.fromkeys(shown))]))
    else:
        parts.append('<p class="muted">no successful evaluation yet</p>')

    plots = [(rdir.path / name, title) for name, title in PLOTS if (rdir.path / name).is_file()]
    if plots:
        parts.append("<h2>Plots</h2>")
        parts += [f"<h3>{html.escape(title)}</h3>{_image(path)}" for path, title in plots]

    failed = trials[trials["status"] != "ok"] if "status" in trials else trials.head(0)
    parts.append(f"<h2>Failures and early stops ({len(failed)})</h2>")
    if len(failed):
        reasons = failed["error"].fillna("").astype(str).str.split(":").str[0].replace("", "(no reason)")
        counts = reasons.value_counts().rename_axis("reason").reset_index(name="trials")
        parts.append(_table(counts))
        parts.append(_table(failed[[c for c in ("trial", "status", "error", "arch") if c in failed]]))
    else:
        parts.append('<p class="muted">none</p>')

    parts.append("<h2>Settings</h2>" + _table(_settings(config)))
    body = "\n".join(parts)
    title = html.escape(f"nas run {rdir.run_id}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
            f"<style>{STYLE}</style></head><body>{body}</body></html>\n")


def write_report(rdir: RunDir, path: str | Path | None = None, top: int = 10) -> Path:
    """Write the report page (default ``<run dir>/report.html``); return its path."""
    target = Path(path) if path is not None else rdir.path / "report.html"
    atomic_write_text(target, render(rdir, top))
    log.info("report of run %s: %s", rdir.run_id, target)
    return target
