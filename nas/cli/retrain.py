"""``nas retrain [ARCH] key=value ...``: parse the settings, run ``nas.deploy.retrain``, print a summary."""
from __future__ import annotations

import argparse
from dataclasses import fields
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from evaluators.base import DEFAULT_DATA
from nas.config import parse_command

AUTO = ("amp", "channels_last", "use_gpu")  # null on the command line means auto


def _recipe_defaults() -> dict[str, Any]:
    from nas.deploy.retrain_recipe import RetrainRecipe  # noqa: PLC0415 - torch

    # auto settings default to null here: key=value typing would refuse true over a string default
    return {f.name: None if f.default == "auto" else f.default for f in fields(RetrainRecipe)}


def _help() -> str:
    d = _recipe_defaults()
    return f"""\
Train one architecture fully on Ray Train (DDP), checkpointing every epoch; report the test top-1.

  nas retrain ARCH [key=value ...]      ARCH: arch string, reference name (nas show) or arch file
  nas retrain run=ID                    the best architecture of search run ID (<out>/runs/ID)
  nas retrain family=FILE phi=N         member phi of a family written by nas scale
  nas retrain resume=true [run_id=ID]   continue a killed retrain from its last checkpoint (default:
                                        the latest); only workers, use_gpu, cpus_per_worker,
                                        max_failures, export, ray.address, progress may change

Recipe (defaults shown):
  epochs={d['epochs']} batch={d['batch']}            batch is global: each of the workers gets batch/workers
  optimizer={d['optimizer']} lr={d['lr']} weight_decay={d['weight_decay']} momentum={d['momentum']} (sgd)
  warmup_epochs={d['warmup_epochs']}              linear warm-up, then cosine decay to zero (per batch)
  label_smoothing={d['label_smoothing']} augment={d['augment']}   randaugment | autoaugment (torchvision)
  ema=null                       decay of a weight EMA (e.g. 0.999), evaluated and exported instead
  amp=auto channels_last=auto    bf16 autocast (auto: with CUDA); NHWC tensors (auto: on)
  resolution=null                training pixels (null: the architecture's own)
  seed={d['seed']}                         dropout and stochastic depth come from the arch string
  data=digits data.<option>=V    data set and its options, as in nas run (data.root=DIR ...)

Execution:
  workers={d['workers']} use_gpu=auto           Ray Train workers; one GPU each (auto: if the cluster has GPUs)
  cpus_per_worker=null           CPUs (torch threads) per worker; null: the cluster's, shared out
  max_failures={d['max_failures']}                 restarts from the last checkpoint when a worker dies
  ray.address=null               a Ray cluster to join (auto, host:port); unset: RAY_ADDRESS, else
                                 a private local cluster
  out=results run_id=NAME        files in <out>/retrain/<run_id>/ (model.pt, checkpoints) and one
                                 row (stage=retrain) in <out>/leaderboard.csv
  export=[torchscript,onnx]      also write model.torchscript.pt / model.onnx
  export=[torchscript_int8]      and/or model.int8.torchscript.pt: int8 (PyTorch FX, x86), calibrated
                                 on 4 training batches, its test top-1 reported beside the float one
  progress=true                  show the workers' output (epochs, Ray Train's messages)
  limits.max_params=1e9          refuse a larger network before anything is built (also
  limits.max_activation_mb=8192  its float32 feature maps for one image, in MB)

Load the result with nas.deploy.retrain.load_model(path) (torch.load weights_only=True + build_model).
"""


def _defaults() -> dict[str, Any]:
    return {
        "run": None, "family": None, "phi": None, **_recipe_defaults(),
        "data": dict(DEFAULT_DATA), "out": "results", "run_id": None, "resume": False, "export": [],
        "ray": {"address": None}, "progress": True, "limits": {"max_params": 1e9, "max_activation_mb": 8192.0},
    }


def parse(items: list[str]) -> tuple[str | None, dict[str, Any], set[str]]:
    """(ARCH or None, the merged settings, the keys given)."""
    command = parse_command(items, _defaults(), groups=("data",), open_keys=("data",), max_positional=1,
                            what="architecture")
    return (command.positional[0] if command.positional else None), command.settings, command.given


def cmd_retrain(args: argparse.Namespace, console: Console, err_console: Console) -> int:
    from nas.deploy.retrain import retrain  # noqa: PLC0415 - torch, Ray

    arch, cfg, given = parse(args.items)
    export = cfg["export"] if isinstance(cfg["export"], list) else [cfg["export"]]
    recipe = {k: "auto" if k in AUTO and cfg[k] is None else cfg[k] for k in _recipe_defaults() if k in given}
    try:
        result = retrain(
            arch, recipe, cfg["data"] if "data" in given or not cfg["resume"] else None, out=cfg["out"],
            run_id=None if cfg["run_id"] in (None, "") else str(cfg["run_id"]), export=export,
            resume=cfg["resume"], run=cfg["run"], family=cfg["family"], phi=cfg["phi"],
            ray_address=cfg["ray"]["address"], progress=cfg["progress"], limits=cfg["limits"],
        )
    except KeyboardInterrupt:
        err_console.print(Text(f"interrupted; continue with: nas retrain resume=true "
                               f"{'run_id=' + str(cfg['run_id']) + ' ' if cfg['run_id'] else ''}out={cfg['out']}"),
                          soft_wrap=True)
        return 130
    table = Table(title=f"retrain {result.run_id}", show_header=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    resumed = f" (resumed after epoch {result.start_epoch})" if result.start_epoch else ""
    int8 = result.test_accuracy_int8
    rows = [
        ("test top-1", f"{result.test_accuracy:.2f}%"),
        *([("test top-1 int8", f"{int8:.2f}%")] if int8 is not None else []),
        ("val top-1", f"{result.val_accuracy:.2f}%"),
        ("epochs", f"{result.epochs}{resumed}"), ("arch", result.arch), ("source", result.source),
        ("resolution", f"{result.resolution} px"), ("params", f"{result.params:,}"), ("MACs", f"{result.macs:,}"),
        ("time", f"{result.train_s:.0f} s training, {result.wall_s:.0f} s in all"), ("model", str(result.model)),
        *((name, path) for name, path in result.exports.items()),
    ]
    for key, value in rows:
        table.add_row(key, Text(value))
    console.print(table)
    return 0


def add_parser(sub: Any, run: Any) -> None:
    p = sub.add_parser("retrain", help="train the winner fully on Ray Train: nas retrain ARCH|run=ID [key=value ...]",
                       description=_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("items", nargs="*", metavar="ARCH|key=value", help="the architecture and settings (see above)")
    p.set_defaults(func=run)


__all__ = ["add_parser", "cmd_retrain"]
