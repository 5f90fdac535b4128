"""One-shot NAS from Python and the CLI: train a weight-sharing supernet, export a member.

``train_supernet`` writes ``<out>/supernets/<run_id>/supernet.pt`` (one checkpoint, replaced after
every epoch) and ``history.csv``; ``extract_member`` writes a standalone ``model.pt`` in the
format `nas.retrain.load_model` reads.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from evaluators.supernet import (
    CHECKPOINT,
    EpochStats,
    SupernetConfig,
    SupernetTraining,
    load_checkpoint,
    load_supernet,
    resolve_device,
)
from nas.archs import resolve_arch
from search_spaces.errors import ConfigError


def config_keys() -> dict[str, Any]:
    """The training settings and their defaults."""
    return {f.name: f.default for f in fields(SupernetConfig)}


def supernet_dir(out: str | Path, run_id: str) -> Path:
    return Path(out) / "supernets" / run_id


def train_supernet(
    space: str | None = None, data: Mapping[str, Any] | None = None, out: str | Path = "results",
    run_id: str | None = None, resume: bool = False, device: str = "auto", amp: bool = False,
    threads: int | None = None, on_epoch: Callable[[EpochStats], None] | None = None,
    on_step: Callable[[int, int], None] | None = None, **settings: Any,
) -> Path:
    """Train a supernet (default space mbconv, data digits); the path of its checkpoint.

    ``resume=True`` continues the training in ``<out>/supernets/<run_id>`` with its saved space,
    data and settings; a setting given that differs from the saved one is refused.
    """
    unknown = sorted(set(settings) - set(config_keys()))
    if unknown:
        from search_spaces.errors import describe_choices

        raise ConfigError(describe_choices("supernet setting", unknown[0], sorted(config_keys())))
    if run_id is None:
        if resume:
            raise ConfigError("run_id: resume=true needs the run_id of the training to continue "
                              f"(the folders in {Path(out) / 'supernets'})")
        run_id = f"{Path(str(space or 'mbconv')).stem}-{(data or {}).get('name', 'digits')}"
    rdir = supernet_dir(out, run_id)
    checkpoint = rdir / CHECKPOINT
    if checkpoint.exists() and not resume:
        raise ConfigError(f"run_id: {rdir} already holds a supernet; continue it with resume=true "
                          f"or choose another run_id=")
    if resume:
        if not checkpoint.exists():
            raise ConfigError(f"resume: no supernet checkpoint in {rdir} (run_id={run_id})")
        saved = load_checkpoint(checkpoint)
        space = space or saved["space"]
        data = data or saved["data"]
        settings = {**saved["config"], **settings}
    space = space or "mbconv"
    data = dict(data or {"name": "digits"})
    training = SupernetTraining(space, data, rdir, SupernetConfig(**settings), device=device, amp=amp,
                                threads=threads)
    if resume:
        training.resume()

    def epoch_done(stats: EpochStats) -> None:
        tmp = rdir / ".history.csv.tmp"
        pd.DataFrame(training.history).to_csv(tmp, index=False)
        os.replace(tmp, rdir / "history.csv")
        if on_epoch is not None:
            on_epoch(stats)

    training.run(on_epoch=epoch_done, on_step=on_step)
    return checkpoint


def extract_member(arch: str, ckpt: str | Path, to: str | Path | None = None, calib_batches: int = 4,
                   device: str = "cpu") -> tuple[Path, float]:
    """Write the member ``arch`` with its inherited weights (BN recalibrated) as a ``model.pt``;
    (its path, its val accuracy %)."""
    from evaluators.data import dataset_from_options
    from evaluators.proxy import scaled_resolution
    from evaluators.training import evaluate, recalibrate_batchnorm

    dev = resolve_device(device)
    supernet, state = load_supernet(ckpt, dev)
    member, _ = resolve_arch(arch, supernet.space)
    data = dataset_from_options(state["data"])
    pixels = scaled_resolution(member, state["config"]["resolution"], supernet.space.base_resolution)
    model = supernet.extract(member).to(dev)
    recalibrate_batchnorm(model, data.loader("train", pixels, 64, 0), dev, calib_batches, only_norms=True)
    accuracy, _ = evaluate(model, data.batches("val", pixels), dev)
    path = Path(to) if to else Path(ckpt).parent / "model.pt" if Path(ckpt).is_file() else Path(ckpt) / "model.pt"
    package = {
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "arch": str(member), "num_classes": supernet.num_classes, "resolution": pixels,
        "val_accuracy": float(accuracy), "data": str(state["data"].get("name", "digits")),
        "source": f"supernet {Path(ckpt)} (epoch {state['epoch']})",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(package, tmp)
    os.replace(tmp, path)
    return path, float(accuracy)


__all__ = ["config_keys", "extract_member", "supernet_dir", "train_supernet"]
