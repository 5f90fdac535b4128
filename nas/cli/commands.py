"""The ``nas`` command line: argument parsing and output formatting only; the work is elsewhere."""
from __future__ import annotations

import argparse
import json
import logging
import math
import random
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from nas.archs import describe, resolve_arch
from nas.run.settings import help_text
from search_spaces import zoo
from search_spaces.errors import NasError
from search_spaces.limits import BuildLimits
from search_spaces.registry import list_spaces, load_space

# What brings numpy, pandas, omegaconf or torch is imported by the command that uses it (noqa: PLC0415
# below), so that importing this module stays light.

# ``nas run``'s exit code for a run that ended without a feasible evaluated candidate (no winner).
NOTHING_FOUND = 3
console = Console()
err_console = Console(stderr=True)


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        report_error(f"{message} (see '{self.prog} --help')")
        raise SystemExit(2)


def report_error(message: str) -> None:
    """One line on stderr; the message is shown verbatim (no rich markup, no wrapping)."""
    err_console.print(Text.assemble(("error: ", "bold red"), message), soft_wrap=True)


# -- commands -------------------------------------------------------------------------------------
def cmd_spaces(args: argparse.Namespace) -> int:
    table = Table(title="search spaces")
    table.add_column("name", style="bold")
    table.add_column("size", justify="right")
    table.add_column("description")
    for space in list_spaces():
        table.add_row(space.name, f"{space.size:,}", space.description)
    console.print(table)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    arch, space = resolve_arch(args.arch, args.space, BuildLimits(args.max_params, args.max_activation_mb))
    info = describe(arch, space)
    if args.plot:
        from nas.report.archplot import arch_plot  # noqa: PLC0415 - pandas

        arch_plot(arch, Path(args.plot), title=args.arch if args.arch in zoo.names() else "")
    if args.json:
        print(json.dumps(info))
        if args.plot:  # stdout stays one JSON object
            err_console.print(Text(f"plot: {args.plot}"), soft_wrap=True)
        return 0
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in info.items():
        shown = f"{value:,}" if isinstance(value, int) and key in ("params", "macs") else str(value)
        table.add_row(key, Text(shown))
    console.print(table)
    if args.plot:
        console.print(Text(f"plot: {args.plot}"), soft_wrap=True)
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from nas.config import parse_command  # noqa: PLC0415 - omegaconf

    cfg = parse_command(args.overrides, {"space": "mbconv", "n": 5, "seed": 0, "json": False},
                        max_positional=0, what="sample").settings
    if cfg["n"] < 1:
        raise NasError(f"n: must be >= 1, got {cfg['n']}")
    space = load_space(cfg["space"])
    rng = random.Random(cfg["seed"])
    archs = [space.canonical(space.sample(rng)) for _ in range(cfg["n"])]
    if cfg["json"]:
        for arch in archs:
            print(json.dumps(describe(arch, space)))
    else:
        for arch in archs:
            print(space.to_string(arch))
    return 0


def _cell(value: object) -> str:
    """Table text of a value: thousands separators for counts, 4 significant decimals, '' for NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) >= 1000:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.1f}"
    return str(value)


def _frame_table(frame, columns: Sequence[str], title: str, caption: str | None = None) -> Table:
    """A table of ``frame``'s columns; every column but the long ``arch``/``error`` stays unwrapped."""
    table = Table(title=title, caption=caption)
    for column in columns:
        numeric = frame[column].dtype.kind in "if" and column not in ("arch", "error")
        long = column in ("arch", "error")
        table.add_column(column, overflow="fold", justify="right" if numeric else "left",
                         no_wrap=not long, min_width=24 if long else None)
    for _, row in frame.iterrows():
        table.add_row(*(Text(_cell(row[c])) for c in columns))
    return table


def cmd_run(args: argparse.Namespace) -> int:
    from nas.run.api import start  # noqa: PLC0415 - pandas
    from nas.run.runconfig import config_from_overrides  # noqa: PLC0415 - omegaconf

    cfg, explicit = config_from_overrides(args.overrides)
    started: list[str] = []
    bar = None
    if cfg["progress"]:
        from nas.progress import ProgressBar  # noqa: PLC0415 - numpy

        bar = ProgressBar(err_console)

    def on_start(run_id: str, budget: int | None, metric: str) -> None:
        started.append(run_id)
        if bar is not None:
            bar.start(run_id, budget, metric)

    try:
        result = start(cfg, explicit, on_trial=bar.update if bar else None, on_start=on_start)
    except KeyboardInterrupt:
        if not started:
            raise
        if bar is not None:
            bar.close()
        report_error(f"interrupted; continue with: nas run resume=true run_id={started[0]} "
                     f"out={cfg['out']}")
        return 130
    finally:
        if bar is not None:
            bar.close()
    print_summary(result)
    if result.stopped_because:
        console.print(f"stopped: {result.stopped_because}", highlight=False, soft_wrap=True)
    console.print(Text(f"results: {result.run_dir}"), soft_wrap=True)
    if result.best is None or result.problem.violation(result.best) > 0:
        return NOTHING_FOUND  # finished, but with nothing to deploy: a script must not read a winner
    return 0


def _mean_std(row: object, metric: str) -> str:
    """``91.3 ± 0.9`` (the std only where there are repeats)."""
    value = row.get(metric)  # type: ignore[attr-defined]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    std = row.get(f"{metric}_std")  # type: ignore[attr-defined]
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return _cell(float(value))
    return f"{float(value):.4g} ± {std:.2g}"  # digits beyond the spread mean nothing


def print_summary(result) -> None:
    """The top architectures (mean ± std, n; strings below the table), the winner's noise line,
    the baselines beside it and, under a baseline's latency bound, where it came from and the verdict."""
    from nas.report.summary import describe_best, describe_bound  # noqa: PLC0415 - pandas

    metrics = [o.metric for o in result.problem.objectives]
    # an int8 run shows its four accuracy/latency columns instead of params and MACs (80 columns)
    int8 = "accuracy_int8" in result.trials
    shown = ("accuracy", "accuracy_int8", "latency_ms", "latency_int8_ms") if int8 else (
        "accuracy", "latency_ms", "params", "macs")
    extra = [c for c in shown if c in result.trials and c not in metrics]
    top = result.top(5)
    evaluations, archs = len(result.trials), int(result.archs["searched"].sum()) if len(result.archs) else 0
    table = Table(title=f"top {len(top)} of {archs} architectures ({evaluations} evaluations)")
    table.add_column("#", justify="right")
    for column in (*metrics, "n", *extra):
        table.add_column(column, justify="right", no_wrap=True)
    for i, (_, row) in enumerate(top.iterrows(), 1):
        cells = [_mean_std(row, m) for m in metrics] + [str(int(row["n"]))]
        table.add_row(str(i), *cells, *(_cell(row.get(c)) for c in extra))
    console.print(table)
    for i, arch in enumerate(top["arch"] if len(top) else [], 1):
        console.print(Text(f"{i:>2}  {arch}"), soft_wrap=True)
    summary = result.summary
    console.print(Text(f"winner: {describe_best(summary)}"), soft_wrap=True)
    rows = summary.get("baselines") or []
    if rows:
        first = metrics[0]
        costs = [c for c in ("latency_ms", "params") if c in extra]
        base = Table(title="baselines (same evaluator, repeats and latency)")
        for column in ("baseline", f"{first} (n)", *costs, "winner - baseline"):
            base.add_column(column, justify="left" if column == "baseline" else "right",
                            overflow="fold", no_wrap=column != "baseline")
        for row in rows:
            diff = row.get("difference")
            shown = "" if diff is None else f"{diff:+.3g}" + (
                f" ± {row['difference_std']:.2g}" if row.get("difference_std") is not None else "")
            value = f"{_mean_std(row, first)} ({row.get('n', 0)})" if first in row else "failed"
            base.add_row(row["name"], value, *(_cell(row.get(c)) for c in costs), shown)
        console.print(base)
    for line in describe_bound(summary):
        console.print(Text(line), soft_wrap=True)


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from nas.run.results import leaderboard  # noqa: PLC0415 - pandas

    if args.top is not None and args.top < 1:
        raise NasError(f"--top: must be >= 1, got {args.top}")
    frame = leaderboard(args.out, top=args.top, sort=args.sort, space=args.space, repeats=args.repeats)
    if "accuracy_std" in frame and not args.repeats:  # one cell: mean ± std
        frame = frame.assign(accuracy=[_mean_std(row, "accuracy") for _, row in frame.iterrows()])
    names = ["run_id", "space", "strategy", "evaluator", "status", "stage"]
    # A name shared by every shown row goes to the caption, leaving the width to the metrics.
    same = [c for c in names if c in frame and len(frame) and frame[c].nunique(dropna=False) == 1]
    core = [*names, "trial", "repeat" if args.repeats else "n", "accuracy", "latency_ms", "params", "macs"]
    if args.sort and args.sort.partition(":")[0] not in core:
        core.append(args.sort.partition(":")[0])
    columns = [c for c in core if c in frame and c not in same and frame[c].notna().any()]
    caption = "  ".join([f"{c}={frame[c].iloc[0]}" for c in same] + [f"{args.out}/leaderboard.csv"])
    title = f"leaderboard: {len(frame)} rows"
    console.print(_frame_table(frame, columns + ["arch"], title, caption))
    return 0


def _typed(value: object) -> str:
    """A default as it is typed on the command line (null, true, 0.25, tpe)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def cmd_strategies(args: argparse.Namespace) -> int:
    from nas.strategies import STRATEGIES  # noqa: PLC0415 - numpy

    table = Table(title=Text("search strategies: nas run strategy=NAME [option=value ...]"))
    table.add_column("strategy", style="bold", no_wrap=True)
    table.add_column("option", no_wrap=True)
    table.add_column("default", no_wrap=True)
    table.add_column("meaning")
    for name in sorted(STRATEGIES):
        cls = STRATEGIES[name]
        doc = (cls.__doc__ or "").strip().splitlines()
        table.add_row(name, "", "", Text(doc[0] if doc else "", style="italic"))
        for option, default, text in cls.options():
            table.add_row("", option, _typed(default), Text(text))
        table.add_section()
    console.print(table)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from nas.report.report import write_report  # noqa: PLC0415 - pandas
    from nas.run.folder import RunDir, find_run  # noqa: PLC0415 - pandas

    if args.top < 1:
        raise NasError(f"--top: must be >= 1, got {args.top}")
    given = Path(args.run) if args.run else None
    if given is not None and (given / "config.yaml").is_file():
        rdir = RunDir(given)  # a run folder's path
    else:
        rdir = find_run(args.out, args.run, action="report")
    path = write_report(rdir, args.to, top=args.top)
    console.print(Text(f"report: {path}"), soft_wrap=True)
    return 0


# -- entry point ----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nas", description="Hardware-aware neural architecture search for CNNs.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("spaces", help="list the shipped search spaces (name, size, description)")
    p.set_defaults(func=cmd_spaces)

    p = sub.add_parser("show", help="show an architecture: string, params, MACs")
    p.add_argument("arch", help="architecture string, reference model name, or path to an arch file")
    p.add_argument("--space", help="check membership in this space (name or YAML path)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--plot", metavar="FILE", help="draw the network (stem, stages, head) to this PNG")
    p.add_argument("--max-params", type=float, default=BuildLimits.max_params,
                   help="refuse larger networks (default: %(default).0e)")
    p.add_argument("--max-activation-mb", type=float, default=BuildLimits.max_activation_mb,
                   help="refuse networks whose feature maps for one image exceed this (default: %(default).0f)")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser(
        "sample",
        help="sample architectures from a space: nas sample space=mbconv n=5 seed=0 [json=true]",
    )
    p.add_argument("overrides", nargs="*", metavar="key=value", help="space=S n=N seed=K json=BOOL")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser(
        "run", help="run a search: nas run space=S strategy=S evaluator=E budget=N ...",
        description=help_text(), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("overrides", nargs="*", metavar="key=value", help="settings (see above)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("leaderboard", help="every evaluated architecture of every run, best first")
    p.add_argument("--top", type=int, help="show the N best rows")
    p.add_argument("--sort", help="column to sort by, optionally COL:max or COL:min "
                   "(default: accuracy, larger first)")
    p.add_argument("--space", help="only this search space's rows")
    p.add_argument("--repeats", action="store_true",
                   help="one row per evaluation (default: one per architecture and run, with its mean, std and n)")
    p.add_argument("--out", default="results", help="results folder (default: results)")
    p.set_defaults(func=cmd_leaderboard)

    p = sub.add_parser("report", help="write a self-contained HTML page of a run: settings, best "
                       "architectures, plots, failures")
    p.add_argument("run", nargs="?", help="run id in --out, or a run folder (default: the latest run)")
    p.add_argument("--out", default="results", help="results folder (default: results)")
    p.add_argument("--top", type=int, default=10, help="architectures listed (default: 10)")
    p.add_argument("--to", help="write the page here (default: <run folder>/report.html)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("strategies", help="list the search strategies and their options")
    p.set_defaults(func=cmd_strategies)

    from nas.cli import latency, retrain, scale, supernet  # noqa: PLC0415 - numpy, omegaconf

    latency.add_parser(sub, lambda args: latency.cmd_latency(args, console, err_console))
    scale.add_parser(sub, lambda args: scale.cmd_scale(args, console, err_console))
    retrain.add_parser(sub, lambda args: retrain.cmd_retrain(args, console, err_console))
    supernet.add_parser(sub, lambda args: supernet.cmd_supernet(args, console, err_console))

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    try:
        return args.func(args)
    except NasError as exc:
        report_error(str(exc))
        return 2
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
