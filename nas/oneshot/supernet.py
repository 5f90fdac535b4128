"""One-shot NAS from Python and the CLI: train a weight-sharing supernet, export a member.

``train_supernet`` writes ``<out>/supernets/<run_id>/supernet.pt`` (one checkpoint, replaced after
every epoch) and ``history.csv``; ``extract_member`` writes a standalone ``model.pt`` in the
format `nas.deploy.retrain.load_model` reads. With ``workers=N`` (N > 1) or a ``ray_address`` the training
runs data-parallel on Ray Train (DDP: gloo on CPUs, NCCL on GPUs), as ``nas retrain`` does.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from evaluators.base import DEFAULT_DATA
from evaluators.data import dataset_from_options
from evaluators.devices import resolve_device
from evaluators.proxy import require_architectures, scaled_resolution
from evaluators.supernet import (
    CHECKPOINT,
    EpochStats,
    SupernetTraining,
    load_checkpoint,
    load_supernet,
)
from evaluators.supernet import log as supernet_log
from evaluators.supernet_config import SupernetConfig, supernet_defaults
from evaluators.training import evaluate, recalibrate_batchnorm
from nas.archs import resolve_arch
from nas.backends.ray_cluster import connect, fit_on_workers, train_scaling
from search_spaces import load_space
from search_spaces.checks import check_auto, check_int
from search_spaces.errors import ConfigError, describe_choices


def supernet_dir(out: str | Path, run_id: str) -> Path:
    return Path(out) / "supernets" / run_id


def _write_history(rdir: Path, history: list[dict[str, float]]) -> None:
    tmp = rdir / ".history.csv.tmp"
    pd.DataFrame(history).to_csv(tmp, index=False)
    os.replace(tmp, rdir / "history.csv")


def _train_worker(config: dict[str, Any]) -> None:
    """Ray Train's per-worker function: one rank of a data-parallel supernet training."""
    from ray.train.torch import get_device  # noqa: PLC0415 - Ray: only for a Ray Train run

    if config["progress"]:
        supernet_log.setLevel(logging.INFO)
    rdir = Path(config["dir"])
    training = SupernetTraining(config["space"], config["data"], rdir, SupernetConfig(**config["settings"]),
                                device=get_device(), amp=config["amp"])
    training.resume()  # rank 0's checkpoint, broadcast: a restarted worker group continues from it
    training.run(on_epoch=lambda _: _write_history(rdir, training.history))


def _train_on_ray(space: str, data: dict[str, Any], rdir: Path, settings: dict[str, Any], amp: bool,
                  workers: int, use_gpu: bool | str, cpus_per_worker: int | None, max_failures: int,
                  ray_address: str | None, progress: bool) -> None:
    import ray  # noqa: PLC0415 - Ray: only for a Ray Train run

    started = connect(ray_address, num_cpus=max(os.cpu_count() or 1, workers * (cpus_per_worker or 1)),
                      log_to_driver=progress)
    try:
        scaling = train_scaling(workers, use_gpu, cpus_per_worker)  # before any file
        rdir.mkdir(parents=True, exist_ok=True)
        config = {"space": space, "data": data, "dir": str(rdir), "settings": settings, "amp": amp,
                  "progress": progress}
        fit_on_workers(_train_worker, config, scaling, name="ray", storage=rdir, max_failures=max_failures,
                       keep=None, what=f"supernet training {rdir.name}",
                       resume=f"nas supernet train resume=true run_id={rdir.name} out={rdir.parent.parent}")
    finally:
        if started:
            ray.shutdown()


def train_supernet(
    space: str | None = None, data: Mapping[str, Any] | None = None, out: str | Path = "results",
    run_id: str | None = None, resume: bool = False, device: str = "auto", amp: bool = False,
    threads: int | None = None, on_epoch: Callable[[EpochStats], None] | None = None,
    on_step: Callable[[int, int], None] | None = None, workers: int = 1, use_gpu: bool | str = "auto",
    cpus_per_worker: int | None = None, max_failures: int = 1, ray_address: str | None = None,
    progress: bool = False, **settings: Any,
) -> Path:
    """Train a supernet (default space mbconv, data digits); the path of its checkpoint.

    ``resume=True`` continues the training in ``<out>/supernets/<run_id>`` with its saved space,
    data and settings; a setting given that differs from the saved one is refused (the worker
    count may change: ``batch_size`` is the global batch).

    ``workers`` > 1 or a ``ray_address`` trains on Ray Train: ``workers`` DDP ranks, one GPU each
    when ``use_gpu`` (auto: when the cluster has GPUs), ``cpus_per_worker`` threads each (null:
    the cluster's CPUs shared out), restarted from the last checkpoint up to ``max_failures``
    times; ``out`` must then be a folder every node sees. ``on_step``/``on_epoch`` are not called
    there (``progress`` passes the workers' epoch logs through).
    """
    check_int("workers", workers, 1)
    check_int("cpus_per_worker", cpus_per_worker, 1, allow_none=True)
    check_int("max_failures", max_failures, 0)
    check_auto("use_gpu", use_gpu)
    unknown = sorted(set(settings) - set(supernet_defaults()))
    if unknown:
        raise ConfigError(describe_choices("supernet setting", unknown[0], sorted(supernet_defaults())))
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
    data = dict(data or DEFAULT_DATA)
    config = SupernetConfig(**settings)
    if workers > 1 or ray_address:
        require_architectures(load_space(space), "supernet")  # bad input fails here, before Ray starts
        dataset_from_options(data)
        _train_on_ray(str(space), data, rdir.resolve(), asdict(config), amp, workers, use_gpu, cpus_per_worker,
                      max_failures, ray_address, progress)
        return checkpoint
    training = SupernetTraining(space, data, rdir, config, device=device, amp=amp, threads=threads)
    if resume:
        training.resume()

    def epoch_done(stats: EpochStats) -> None:
        _write_history(rdir, training.history)
        if on_epoch is not None:
            on_epoch(stats)

    training.run(on_epoch=epoch_done, on_step=on_step)
    return checkpoint


def extract_member(arch: str, ckpt: str | Path, to: str | Path | None = None, calib_batches: int = 4,
                   device: str = "cpu") -> tuple[Path, float]:
    """Write the member ``arch`` with its inherited weights (BN recalibrated) as a ``model.pt``;
    (its path, its val accuracy %)."""
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


__all__ = ["extract_member", "supernet_dir", "train_supernet"]
