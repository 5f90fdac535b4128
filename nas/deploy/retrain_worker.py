"""The loop each Ray Train worker runs for ``nas retrain``: data shards, augmentation, EMA,
per-epoch checkpoints (rank 0) and resuming from the latest one."""
from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel
from torch.utils.data import DataLoader, DistributedSampler
from torchvision.transforms import v2

from evaluators.data import dataset_from_options
from evaluators.proxy import arch_seed
from evaluators.streamed import ImageSubset
from evaluators.training import evaluate, make_optimizer, make_scheduler, train_epoch
from nas.deploy.retrain_recipe import RetrainRecipe
from search_spaces.builder import build_model

log = logging.getLogger("nas.deploy.retrain")
STATE_FILE = "state.pt"  # inside each Ray Train checkpoint directory

class _Augmented(torch.utils.data.Dataset):
    """In-memory normalised images mapped to uint8 (per-channel range of the split), passed through
    a torchvision policy, and mapped back: the policies' colour operations expect pixel values."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, policy: Any) -> None:
        self.low = x.amin(dim=(0, 2, 3), keepdim=True)[0]
        self.scale = (x.amax(dim=(0, 2, 3), keepdim=True)[0] - self.low).clamp_min(1e-6) / 255
        self.x = ((x - self.low) / self.scale).round().clamp(0, 255).to(torch.uint8)
        self.y = y
        self.policy = policy

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.policy(self.x[i]).float() * self.scale + self.low, self.y[i]


def _policy(augment: str) -> Any:
    return v2.RandAugment() if augment == "randaugment" else v2.AutoAugment(v2.AutoAugmentPolicy.IMAGENET)


def train_set(data: Any, pixels: int, augment: str) -> torch.utils.data.Dataset:
    """The training split at ``pixels``, augmented per image when asked."""
    if data.storage == "memory":
        x, y = data.at("train", pixels)
        if augment == "none":
            return torch.utils.data.TensorDataset(x, y)
        return _Augmented(x, y, _policy(augment))
    steps = [v2.ToImage(), v2.RGB(), v2.Resize((pixels, pixels), antialias=True)]
    steps += [] if augment == "none" else [_policy(augment)]
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(data.mean, data.std)]
    return ImageSubset(data.base, data.indices["train"], v2.Compose(steps))


def _shard_loader(dataset: torch.utils.data.Dataset, batch: int, seed: int, rank: int, world: int,
                  workers: int) -> tuple[torch.utils.data.DataLoader, torch.utils.data.DistributedSampler]:
    """This rank's share of every epoch; each rank sees as many batches (DDP needs equal steps)."""
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed)
    loader = DataLoader(dataset, batch_size=batch, sampler=sampler, drop_last=len(sampler) > batch,
                        num_workers=workers, persistent_workers=workers > 0)
    return loader, sampler


def ema_average(decay: float) -> Any:
    """``AveragedModel``'s avg_fn for an EMA whose decay warms up as ``(1 + n) / (10 + n)``
    (TensorFlow's ExponentialMovingAverage with num_updates): a fixed decay would keep the random
    initial weights in the average for thousands of steps, ruining short retrains."""

    def average(averaged: torch.Tensor, current: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        if not current.is_floating_point():  # BatchNorm's batch counter
            return current
        # a tensor weight, not float(n): no host sync per parameter on a GPU
        weight = ((1 + n) / (10 + n)).clamp(max=decay).to(current.dtype)
        return torch.lerp(current, averaged, weight)

    return average


def train_loop(config: dict[str, Any]) -> None:
    """Ray Train's per-worker function: build, restore, train, checkpoint every epoch, test."""
    import ray.train  # noqa: PLC0415 - Ray: in Ray Train's workers only
    from ray.train.torch import get_device, prepare_model  # noqa: PLC0415 - Ray

    if config["progress"]:
        log.setLevel(logging.INFO)
    recipe = RetrainRecipe(**config["recipe"])
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    device = get_device()
    cfg = recipe.train_config(recipe.batch // world, cuda=device.type == "cuda")
    data = dataset_from_options(config["data"])
    pixels = config["resolution"]
    loader, sampler = _shard_loader(train_set(data, pixels, recipe.augment), cfg.batch_size, recipe.seed,
                                    rank, world, getattr(data, "workers", 0) if data.storage == "stream" else 0)

    torch.manual_seed(recipe.seed)
    model = build_model(config["arch"], data.num_classes)
    model.to(memory_format=torch.channels_last if cfg.channels_last else torch.contiguous_format)
    state = restore(ray.train.get_checkpoint())
    if state is not None:
        model.load_state_dict(state["model"])
    model = prepare_model(model, parallel_strategy="ddp")  # to the device; DDP when world > 1
    plain = getattr(model, "module", model)
    optimizer = make_optimizer(model, cfg)
    scheduler = make_scheduler(optimizer, cfg, len(loader))
    ema = None
    if recipe.ema is not None and rank == 0:  # rank 0 alone scores and saves the model
        ema = AveragedModel(plain, avg_fn=ema_average(recipe.ema), use_buffers=True)
        # train_epoch stays as it is: the EMA follows every optimiser step through a hook
        optimizer.register_step_post_hook(lambda *_: ema.update_parameters(plain))
    start, history, train_s = 0, [], 0.0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if ema is not None and state["ema"] is not None:
            ema.load_state_dict(state["ema"])
        start, history, train_s = state["epoch"], list(state["history"]), state["train_s"]
    scored = ema.module if ema is not None else plain
    criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    if rank == 0:
        log.info("retrain %s: epochs %d..%d of %d on %d worker(s), %s, %d px", config["run_id"], start + 1,
                 recipe.epochs, recipe.epochs, world, device, pixels)
    for epoch in range(start, recipe.epochs):
        sampler.set_epoch(epoch)
        # seeded per (epoch, rank): a resumed run draws the augmentations and dropout masks an
        # uninterrupted one would have drawn
        torch.manual_seed(arch_seed(recipe.seed, f"{epoch}:{rank}"))
        begin = time.perf_counter()
        train_loss = train_epoch(model, loader, optimizer, scheduler, criterion, device, cfg.amp,
                                 channels_last=cfg.channels_last)
        train_s += time.perf_counter() - begin
        metrics = {"epoch": epoch + 1, "start_epoch": start, "train_loss": train_loss,
                   "lr": scheduler.get_last_lr()[0], "train_s": train_s}
        if rank != 0:
            ray.train.report(metrics)
            continue
        val = data.batches("val", pixels)
        metrics["val_accuracy"], metrics["val_loss"] = evaluate(scored, val, device, cfg.amp, cfg.channels_last)
        if epoch + 1 == recipe.epochs:
            test = data.batches("test", pixels)
            metrics["test_accuracy"], metrics["test_loss"] = evaluate(scored, test, device, cfg.amp,
                                                                      cfg.channels_last)
        history.append(metrics)
        log.info("retrain %s: epoch %d/%d loss %.4f val %.2f%%", config["run_id"], epoch + 1, recipe.epochs,
                 train_loss, metrics["val_accuracy"])
        state = {"epoch": epoch + 1, "model": plain.state_dict(), "optimizer": optimizer.state_dict(),
                 "scheduler": scheduler.state_dict(), "ema": None if ema is None else ema.state_dict(),
                 "history": history, "train_s": train_s}
        # bf16 autocast needs no GradScaler, so there is no scaler state to keep
        with tempfile.TemporaryDirectory() as folder:
            torch.save(state, Path(folder) / STATE_FILE)
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder))


def restore(checkpoint: Any) -> dict[str, Any] | None:
    """The training state inside a Ray Train checkpoint (None: start from scratch)."""
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        return torch.load(Path(folder) / STATE_FILE, map_location="cpu", weights_only=True)
