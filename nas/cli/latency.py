"""``nas latency profile|fit|eval key=value ...``: output and progress bars for device profiling."""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from nas.config import parse_command
from nas.progress import task_bar

LATENCY_HELP = """\
Profile this machine for latency prediction, and check how accurate the prediction is.

  nas latency profile space=mbconv device=cpu threads=1 batch=1 [calibrate=40]
      time every stem/layer/head the space's networks can contain (resumable; cached under
      <out>/latency/<fingerprint>/), then `calibrate` whole networks to calibrate the table
  nas latency fit space=mbconv n=200
      measure n more networks and train the learned predictor (gradient boosting)
  nas latency eval space=mbconv n=100 passes=2
      measure n fresh networks `passes` times and score every predictor: RMSE, MAPE, share within
      5% / 10%, Kendall tau, predictions per second; the passes' own disagreement is the noise floor

Settings: device=cpu|cuda|cuda:N threads=1 batch=1 dtype=float32|float16|bfloat16
  channels_last=true runtime=torch|onnxruntime num_classes=1000
  warmup=3 repeats=20 rounds=20 (timed runs per module, spread over interleaved rounds; each
      round calls the module once untimed first, as back-to-back calls find warm caches)
  placement=per-round|fixed (per-round: the weights move to new memory before each round, so the
      runs span as many placements as rounds; where weights lie changes a network's speed)
  statistic=median|lower-half (one latency from a module's runs: their median, what a stopwatch
      loop reports, or the mean of their faster half)
  reference=none|block|matmul (block, matmul: each group of runs is scaled by a fixed workload
      timed just before it, relative to its median over the same measurement: evens out drift
      within a measurement, never changes the unit; latencies are wall-clock ms either way)
  out=results profile=DIR (a profile directory; its fingerprint must match these settings)
  json=true (eval: print the report as JSON) progress=true
"""


def cmd_latency(args: argparse.Namespace, console: Console, err_console: Console) -> int:
    from nas.profile import latency  # noqa: PLC0415 - torch

    cfg = parse_command(args.overrides, latency.LATENCY_DEFAULTS, max_positional=0, what="latency").settings
    session = latency.open_session(cfg)
    bar = task_bar(err_console) if cfg["progress"] else None
    tasks: dict[str, Any] = {}

    def progress(what: str, done: int, total: int) -> None:
        if bar is None:
            return
        if what not in tasks:
            tasks[what] = bar.add_task(what, total=total)
        bar.update(tasks[what], completed=done, total=total)

    console.print(Text(f"profile {session.store.fingerprint.slug}: {session.store.fingerprint.describe()}"),
                  soft_wrap=True)
    if bar is not None:
        bar.start()
    try:
        if args.action == "profile":
            report = latency.profile(session, cfg["calibrate"], progress)
        elif args.action == "fit":
            predictor = latency.fit(session, cfg["n"], progress)
        else:
            result = latency.evaluate(session, cfg["n"], cfg["passes"], progress)
    finally:
        if bar is not None:
            bar.stop()
    if args.action == "profile":
        c = report.calibration
        console.print(f"{report.parts} parts ({report.measured_now} measured now), {report.networks} "
                      f"calibration networks, {report.seconds:.0f} s; calibration {c.describe()}",
                      highlight=False)
    elif args.action == "fit":
        verdict = "used by latency=auto" if predictor.beats_table else "latency=auto keeps the table"
        table = f" vs the table's {predictor.table_mape:.2f}%" if predictor.table_mape is not None else ""
        console.print(f"learned predictor trained on {predictor.trained_on} measured networks: 5-fold MAPE "
                      f"{predictor.cv_mape:.2f}%{table} ({verdict})", highlight=False)
    else:
        _print_eval(result, cfg, console)
    console.print(Text(f"stored in {session.store.path}"), soft_wrap=True)
    return 0


def _print_eval(result: Any, cfg: dict[str, Any], console: Console) -> None:
    if cfg["json"]:
        print(json.dumps({"n": result.n, "predictors": [asdict(a) for a in result.accuracy],
                          "noise": asdict(result.noise) if result.noise else None,
                          "measured_ms": result.measured.tolist()}))
        return
    table = Table(title=f"latency prediction on {result.n} held-out networks (mean of {len(result.passes)} passes)")
    for column in ("predictor", "RMSE ms", "MAPE %", "within 5%", "within 10%", "Kendall tau", "predictions/s"):
        table.add_column(column, justify="left" if column == "predictor" else "right")
    rows = list(result.accuracy) + ([result.noise] if result.noise else [])
    for a in rows:
        rate = f"{a.predictions_per_s:,.0f}" if a.predictions_per_s else "-"
        table.add_row(a.predictor, f"{a.rmse_ms:.3f}", f"{a.mape:.2f}", f"{a.within_5:.0f}%",
                      f"{a.within_10:.0f}%", f"{a.kendall_tau:.3f}", rate)
    console.print(table)
    console.print("the last row compares the two measurement passes: no predictor can beat the machine's "
                  "own run-to-run noise by much", highlight=False)


def add_parser(sub: Any, run: Any) -> None:
    p = sub.add_parser("latency", help="profile a device for latency prediction: nas latency profile|fit|eval ...",
                       description=LATENCY_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=("profile", "fit", "eval"))
    p.add_argument("overrides", nargs="*", metavar="key=value", help="settings (see above)")
    p.set_defaults(func=run)


__all__ = ["add_parser", "cmd_latency"]
