"""``nas supernet train|extract key=value ...``: one-shot NAS from the command line."""
from __future__ import annotations

import argparse
from types import SimpleNamespace
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from evaluators.base import DEFAULT_DATA
from evaluators.supernet_config import supernet_defaults
from nas.config import parse_command
from search_spaces.errors import ConfigError


def train_defaults() -> dict[str, Any]:
    return {"space": "mbconv", "data": dict(DEFAULT_DATA), "out": "results", "run_id": None, "resume": False,
            "device": "auto", "amp": False, "threads": None, "progress": True, "workers": 1, "use_gpu": "auto",
            "cpus_per_worker": None, "max_failures": 1, "ray": {"address": None}, **supernet_defaults()}


def extract_defaults() -> dict[str, Any]:
    return {"ckpt": None, "to": None, "calib_batches": 4, "device": "cpu"}


def _help() -> str:
    # bools as typed on the command line
    d = SimpleNamespace(**{k: str(v).lower() if isinstance(v, bool) else v for k, v in train_defaults().items()})
    return f"""\
Train a weight-sharing supernet once (sandwich rule, kind-balanced sampling or SPOS, in-place
distillation, elastic kernel, expansion, width and depth as Once-for-All), then score members in seconds each:
nas run ... evaluator=supernet supernet.ckpt=PATH.

  nas supernet train space=S data=D [key=value ...]   train; a checkpoint after every epoch
  nas supernet train resume=true run_id=ID            continue a stopped training from it
  nas supernet extract ARCH ckpt=PATH [to=FILE]       a member as a standalone model.pt

train (defaults shown):
  space={d.space} data=digits data.<option>=V     a YAML space; data set and its options as in nas run
  epochs={d.epochs} batch_size={d.batch_size} optimizer={d.optimizer} lr={d.lr} weight_decay={d.weight_decay}
  momentum={d.momentum} (sgd)
  warmup_epochs={d.warmup_epochs} label_smoothing={d.label_smoothing}    linear warm-up, cosine decay per step
  sampling={d.sampling}              sandwich (the largest, the smallest and random_subnets random members
                                 per step) | fair (the largest and random_subnets random members,
                                 each kind of weights - expansion 1 or not, block type - equally
                                 often) | uniform (SPOS: one random member per step)
  random_subnets={d.random_subnets} distill={d.distill}    fair, sandwich: in-place distillation from the largest member
  resolution={d.resolution}                pixels for the space's base resolution (others keep their ratio)
  zero_init={d.zero_init}                residual blocks start as the identity, the classifier at 0 (BigNAS)
  regularize={d.regularize}             dropout and stochastic depth for the largest member only | all
  largest_per_kind={d.largest_per_kind}      fair, sandwich: the largest member also once per other kind of
                                 weights (mbconv: every stage at expansion 1), every step
  shrink={d.shrink}                    progressive: Once-for-All's order, the epochs split evenly over: the
                                 largest member alone, + elastic kernel, + depth, + everything else
  seed={d.seed} device=auto amp=false threads=null   amp: bf16 autocast on CUDA
  workers={d.workers} use_gpu=auto           workers > 1: data-parallel on Ray Train (DDP; gloo on CPUs,
                                 NCCL on GPUs, one GPU each; auto: if the cluster has GPUs);
                                 batch_size is the global batch
  cpus_per_worker=null           CPUs (torch threads) per worker; null: the cluster's, shared out
  max_failures={d.max_failures}                 restarts from the last checkpoint when a worker dies
  ray.address=null               a Ray cluster to join (auto, host:port); unset: RAY_ADDRESS, else a
                                 local one; out= must be a folder every node sees
  out=results run_id=SPACE-DATA     files in <out>/supernets/<run_id>/ (supernet.pt, history.csv)
  progress=true

extract:
  ckpt=PATH                        a supernet.pt or its folder
  to=<ckpt folder>/model.pt        where to write (nas.deploy.retrain.load_model reads it)
  calib_batches=4                  training batches to recalibrate BatchNorm statistics on
"""


def parse(items: list[str], defaults: dict[str, Any]) -> tuple[list[str], dict[str, Any], set[str]]:
    """(the positional words, the merged settings, the keys given)."""
    command = parse_command(items, defaults, groups=("data",), open_keys=("data",))
    return command.positional, command.settings, command.given


def cmd_supernet(args: argparse.Namespace, console: Console, err_console: Console) -> int:
    if args.action == "train":
        return _train(args.items, console, err_console)
    return _extract(args.items, console)


def _train(items: list[str], console: Console, err_console: Console) -> int:
    from evaluators.supernet import load_checkpoint  # noqa: PLC0415 - torch
    from nas.oneshot.supernet import train_supernet  # noqa: PLC0415 - torch

    positional, cfg, given = parse(items, train_defaults())
    if cfg["use_gpu"] is None:
        cfg["use_gpu"] = "auto"
    if positional:
        raise ConfigError(f"nas supernet train takes key=value settings only, got {positional[0]!r}")
    settings = {k: cfg[k] for k in supernet_defaults() if k in given}  # the rest: defaults, or the saved ones
    progress = Progress(TextColumn("[bold]supernet"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("{task.fields[note]}"), console=err_console, disable=not cfg["progress"])
    task = progress.add_task("train", total=None, note="")

    def on_step(done: int, total: int) -> None:
        if not progress.live.is_started:
            progress.start()  # once training runs: a refusal before it stays one line
        progress.update(task, completed=done, total=total)

    def on_epoch(stats: Any) -> None:
        progress.update(task, note=f"epoch {stats.epoch}: loss {stats.loss:.3f}, largest {stats.largest:.1f}%, "
                                   f"smallest {stats.smallest:.1f}%")

    run_id = None if cfg["run_id"] in (None, "") else str(cfg["run_id"])
    try:
        path = train_supernet(cfg["space"] if "space" in given else None, cfg["data"] if "data" in given else None,
                              cfg["out"], run_id, cfg["resume"], cfg["device"],
                              cfg["amp"], cfg["threads"], on_epoch=on_epoch, on_step=on_step,
                              workers=cfg["workers"], use_gpu=cfg["use_gpu"], cpus_per_worker=cfg["cpus_per_worker"],
                              max_failures=cfg["max_failures"], ray_address=cfg["ray"]["address"],
                              progress=cfg["progress"], **settings)
    except KeyboardInterrupt:
        err_console.print(Text("interrupted; the last finished epoch is saved: continue with "
                               f"nas supernet train resume=true run_id={run_id or '<space>-<data>'}"), soft_wrap=True)
        return 130
    finally:
        progress.stop()
    console.print(Text(f"supernet: {path}\nscore members with: nas run space={load_checkpoint(path)['space']} "
                       f"evaluator=supernet supernet.ckpt={path}"), soft_wrap=True)
    return 0


def _extract(items: list[str], console: Console) -> int:
    from nas.oneshot.supernet import extract_member  # noqa: PLC0415 - torch

    positional, cfg, _ = parse(items, extract_defaults())
    if len(positional) != 1:
        raise ConfigError(f"architecture: give one ARCH to extract, got {len(positional)}")
    if not cfg["ckpt"]:
        raise ConfigError("ckpt: missing; give the supernet with ckpt=PATH (a supernet.pt or its folder)")
    path, accuracy = extract_member(positional[0], cfg["ckpt"], cfg["to"], cfg["calib_batches"], cfg["device"])
    table = Table(show_header=False, title="extracted member")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("model", Text(str(path)))
    table.add_row("val top-1", f"{accuracy:.2f}% (inherited weights, BN recalibrated)")
    console.print(table)
    return 0


def add_parser(sub: Any, run: Any) -> None:
    p = sub.add_parser("supernet", help="one-shot NAS: nas supernet train space=S | extract ARCH ckpt=PATH",
                       description=_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=("train", "extract"), help="train a supernet, or extract a member")
    p.add_argument("items", nargs="*", metavar="ARCH|key=value", help="settings (see above)")
    p.set_defaults(func=run)


__all__ = ["add_parser", "cmd_supernet"]
