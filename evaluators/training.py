"""Supervised training of one network: optimiser, LR schedule, epochs and evaluation.

Shared by proxy evaluation (a few epochs per candidate) and retraining (the winner, for long).
Standard choices: AdamW or Nesterov SGD without weight decay on norms and biases, a linear warm-up
into a cosine decay stepped per batch, label smoothing, bf16 autocast on CUDA when asked.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader

from evaluators.base import EvaluationFailed
from evaluators.train_config import TrainConfig


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The optimiser, with weight decay on conv/linear weights only (not norms, biases, scales)."""
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.ndim > 1 else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def make_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """Linear warm-up, then cosine decay to zero; stepped once per batch."""
    total = max(1, cfg.steps or cfg.epochs * steps_per_epoch)
    warmup = min(total - 1, round(cfg.warmup_epochs * steps_per_epoch))
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total - warmup))
    if warmup <= 0:
        return cosine
    ramp = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.01, total_iters=warmup)
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [ramp, cosine], milestones=[warmup])


def _memory_format(channels_last: bool) -> torch.memory_format:
    return torch.channels_last if channels_last else torch.contiguous_format


def autocast(device: torch.device, amp: bool):
    enabled = amp and device.type == "cuda"
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


def train_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    criterion: nn.Module,
    device: torch.device,
    amp: bool = False,
    deadline: float | None = None,
    channels_last: bool = False,
    max_steps: int | None = None,
) -> float:
    """One pass over ``loader`` (its first ``max_steps`` batches); the mean training loss.
    EvaluationFailed on a non-finite loss
    (``diverged``) or when ``deadline`` (a ``time.monotonic()`` value) passes (``timeout``)."""
    model.train()
    total, count = 0.0, 0
    layout = _memory_format(channels_last)
    for step, (images, labels) in enumerate(loader):
        if max_steps is not None and step >= max_steps:
            break
        images = images.to(device, non_blocking=True, memory_format=layout)
        labels = labels.to(device, non_blocking=True)
        with autocast(device, amp):
            loss = criterion(model(images), labels)
        if not torch.isfinite(loss):
            raise EvaluationFailed("diverged", f"training loss became {loss.item()} at batch {count}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total += loss.item() * len(labels)
        count += len(labels)
        if deadline is not None and time.monotonic() > deadline:
            raise EvaluationFailed("timeout", "training did not finish within timeout_s")
    return total / max(1, count)


@torch.no_grad()
def evaluate(
    model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], device: torch.device,
    amp: bool = False, channels_last: bool = False,
) -> tuple[float, float]:
    """(top-1 accuracy in %, mean cross-entropy) of ``model`` over ``batches`` of (images, labels)."""
    model.eval()
    layout = _memory_format(channels_last)
    correct, loss, n = 0, 0.0, 0
    for images, labels in batches:
        x = images.to(device, non_blocking=True, memory_format=layout)
        y = labels.to(device, non_blocking=True)
        with autocast(device, amp):
            logits = model(x)
        loss += nn.functional.cross_entropy(logits.float(), y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
        n += len(y)
    return 100.0 * correct / max(1, n), loss / max(1, n)


@torch.no_grad()
def recalibrate_batchnorm(
    model: nn.Module, loader: DataLoader, device: torch.device, batches: int = 8, channels_last: bool = False,
    only_norms: bool = False,
) -> None:
    """Re-estimate BatchNorm running statistics as a plain average over ``batches`` training
    batches with the final weights. After a short, high-LR training the running averages trail
    the weights so far that eval-mode outputs collapse; one-shot NAS (Once-for-All, SPOS)
    recalibrates for the same reason. ``only_norms``: the rest of the model (stochastic depth,
    dropout) stays in eval mode, as the one-shot evaluator does."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms or batches < 1:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    model.eval() if only_norms else model.train()
    for m in norms:
        m.train()
    for i, (images, _) in enumerate(loader):
        if i >= batches:
            break
        model(images.to(device, non_blocking=True, memory_format=_memory_format(channels_last)))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum


@dataclass(frozen=True)
class FitResult:
    accuracy: float  # top-1 % on the evaluation split after the last epoch
    loss: float  # its cross-entropy
    train_loss: float  # mean training loss of the last epoch
    epochs: int
    train_s: float
    steps: int = 0


def fit(
    model: nn.Module,
    loader: DataLoader,
    val: Iterable[tuple[torch.Tensor, torch.Tensor]],
    cfg: TrainConfig,
    device: torch.device,
    report: Callable[[int, dict[str, float]], None] | None = None,
    deadline: float | None = None,
) -> FitResult:
    """Train for ``cfg.epochs`` (or ``cfg.steps``); evaluate on ``val`` (re-iterable batches) after
    each epoch when ``report`` watches the curve (pruning), otherwise after the last one only."""
    model.to(device, memory_format=_memory_format(cfg.channels_last))
    optimizer = make_optimizer(model, cfg)
    scheduler = make_scheduler(optimizer, cfg, len(loader))
    criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    start = time.perf_counter()
    accuracy = loss = train_loss = math.nan
    per_epoch = len(loader)
    total = cfg.steps or cfg.epochs * per_epoch
    epochs = math.ceil(total / per_epoch)
    done = 0
    for epoch in range(1, epochs + 1):
        todo = min(per_epoch, total - done)
        train_loss = train_epoch(model, loader, optimizer, scheduler, criterion, device, cfg.amp, deadline,
                                 cfg.channels_last, max_steps=todo)
        done += todo
        if report is None and epoch < epochs:
            continue  # nobody watches the curve: evaluate once, at the end
        recalibrate_batchnorm(model, loader, device, cfg.bn_recalibration, cfg.channels_last)
        accuracy, loss = evaluate(model, val, device=device, amp=cfg.amp, channels_last=cfg.channels_last)
        if not math.isfinite(loss):
            raise EvaluationFailed("diverged", f"validation loss is {loss} after epoch {epoch}")
        if report is not None:
            report(epoch, {"accuracy": accuracy, "loss": loss, "train_loss": train_loss})
    return FitResult(accuracy, loss, train_loss, epochs, time.perf_counter() - start, done)
