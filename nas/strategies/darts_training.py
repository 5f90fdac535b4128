"""The training side of DARTS (see ``nas.strategies.darts``): bilevel steps on a supernet, the
expected latency under its architecture weights, and the collapse guard."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from itertools import cycle
from typing import Any

import torch
from torch import nn

from evaluators.latency.parts import head_key, layer_key, stem_key
from evaluators.train_config import TrainConfig
from evaluators.training import autocast, make_scheduler
from nas.strategies.darts_config import DartsConfig, DartsResult
from search_spaces import layout as L
from search_spaces.arch import Head, Stem
from search_spaces.errors import ConfigError

log = logging.getLogger(__name__)


def expected_latency(net: Any, latency: Sequence[torch.Tensor], constant: float,
                     weights: list[torch.Tensor]) -> torch.Tensor:
    """Latency in ms expected under the candidate ``weights``: stem and head, plus each layer's
    candidates weighted, times the probability that the layer exists."""
    total = torch.tensor(constant)
    for layer, per_candidate in zip(net.layers, latency):
        value = (weights[layer.unit] * per_candidate).sum()
        keep = net.presence(layer, weights)
        if keep is not None:
            value = value * keep
        total = total + value
    return total


def darts_search(net: Any, data: Any, cfg: DartsConfig, device: torch.device,
                 latency: tuple[list[torch.Tensor], float] | None = None,
                 progress: Callable[[int, int], None] | None = None) -> DartsResult:
    """Train ``net`` (a Supernet) on ``data`` (train/val splits) and return what it derives."""
    start = time.perf_counter()
    net.to(device)
    weights_params, alphas = net.weight_parameters(), net.arch_parameters()
    decay = [p for p in weights_params if p.ndim > 1]
    rest = [p for p in weights_params if p.ndim <= 1]
    opt_w = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                               {"params": rest, "weight_decay": 0.0}], lr=cfg.lr)
    opt_a = torch.optim.Adam(alphas, lr=cfg.alpha_lr, betas=(0.5, 0.999), weight_decay=cfg.alpha_weight_decay)
    train = data.loader("train", cfg.train_resolution, cfg.batch_size, cfg.seed)
    val = data.loader("val", cfg.train_resolution, cfg.batch_size, cfg.seed + 1)
    sched = make_scheduler(opt_w, TrainConfig(epochs=cfg.epochs, warmup_epochs=0.5, lr=cfg.lr), len(train))
    criterion = nn.CrossEntropyLoss()
    gumbel = torch.Generator().manual_seed(cfg.seed)
    table = None
    if latency is not None:
        table = ([t.to(device) for t in latency[0]], latency[1])
        uniform, _ = net.unit_weights("soft")
        target = cfg.target_ms or float(expected_latency(net, *table, [w.detach() for w in uniform]))
    result = DartsResult(derived=None)

    streak, snapshot = 0, [a.detach().clone() for a in alphas]

    def arch_loss(images: torch.Tensor, labels: torch.Tensor, w: list[torch.Tensor], p: list) -> torch.Tensor:
        with autocast(device, cfg.amp):
            loss = criterion(net(images, w, p).float(), labels)
        if table is not None and cfg.latency_weight > 0:
            ratio = expected_latency(net, *table, w) / target
            loss = loss + cfg.latency_weight * ratio if cfg.latency_penalty == "additive" else \
                loss * ratio ** cfg.latency_weight
        return loss

    for epoch in range(cfg.epochs):
        tau = cfg.tau_max * (cfg.tau_min / cfg.tau_max) ** (epoch / max(1, cfg.epochs - 1))
        searching = epoch >= cfg.warmup_epochs
        net.train()
        total, count = 0.0, 0
        for (x, y), (xv, yv) in zip(train, cycle(val)):
            x, y, xv, yv = x.to(device), y.to(device), xv.to(device), yv.to(device)
            w, p = net.unit_weights(cfg.mode, tau, gumbel)
            with autocast(device, cfg.amp):
                loss = criterion(net(x, w, p).float(), y)
            if not torch.isfinite(loss):
                raise ConfigError(f"darts: the supernet's training loss became {loss.item()}; lower lr")
            opt_w.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(weights_params, 5.0)
            opt_w.step()
            sched.step()
            total, count = total + loss.item() * len(y), count + len(y)
            if not searching:
                continue
            opt_a.zero_grad(set_to_none=True)
            if cfg.order == 2:
                _second_order_step(net, x, y, xv, yv, arch_loss, criterion, sched.get_last_lr()[0])
            else:
                w, p = net.unit_weights(cfg.mode, tau, gumbel)
                arch_loss(xv, yv, w, p).backward()
            for param in weights_params:
                param.grad = None
            opt_a.step()
        probs = net.probabilities()
        entry: dict[str, Any] = {
            "epoch": epoch + 1, "tau": tau, "train_loss": total / max(1, count), "identity_share": net.identity_share(),
            "probabilities": {u.name: [round(float(v), 5) for v in pr] for u, pr in zip(net.units, probs)},
        }
        if table is not None:
            entry["expected_latency_ms"] = float(expected_latency(net, *table, probs))
        result.history.append(entry)
        if progress is not None:
            progress(epoch + 1, cfg.epochs)
        if searching and entry["identity_share"] >= cfg.collapse_threshold:
            streak += 1
            if streak >= cfg.collapse_patience:
                with torch.no_grad():
                    for a, saved in zip(alphas, snapshot):
                        a.copy_(saved)
                result.stopped = (f"collapse guard: identity share >= {cfg.collapse_threshold} for {streak} epochs "
                                  f"(epochs {epoch + 2 - streak}-{epoch + 1}); architecture weights of epoch "
                                  f"{epoch + 1 - streak} kept")
                log.warning("darts: %s", result.stopped)
                break
        else:
            streak = 0
            snapshot = [a.detach().clone() for a in alphas]
    result.derived = net.derive()
    result.seconds = time.perf_counter() - start
    return result


def _second_order_step(net, x, y, xv, yv, arch_loss, criterion, xi: float) -> None:
    """Second-order DARTS: the architecture gradient at the weights after one virtual step,
    corrected by a finite-difference Hessian-vector product (Liu et al. 2019, eq. 7-8)."""
    params, alphas = net.weight_parameters(), net.arch_parameters()
    saved = [p.detach().clone() for p in params]
    grads = torch.autograd.grad(criterion(net(x), y), params, allow_unused=True)
    with torch.no_grad():
        for p, g in zip(params, grads):
            if g is not None:
                p.sub_(xi * g)
    loss = arch_loss(xv, yv, *net.unit_weights("soft"))
    d_alpha = torch.autograd.grad(loss, alphas, retain_graph=True)
    d_w = torch.autograd.grad(loss, params, allow_unused=True)
    norm = torch.sqrt(sum((g * g).sum() for g in d_w if g is not None))
    eps = 0.01 / float(norm.clamp_min(1e-12))
    hessian = []
    for sign in (1.0, -2.0):  # w + eps*dw, then w - eps*dw
        with torch.no_grad():
            for p, s, g in zip(params, saved, d_w):
                p.copy_(s)
                if g is not None and sign > 0:
                    p.add_(eps * g)
                elif g is not None:
                    p.sub_(eps * g)
        hessian.append(torch.autograd.grad(criterion(net(x), y), alphas))
    with torch.no_grad():
        for p, s in zip(params, saved):
            p.copy_(s)
    for a, da, hp, hm in zip(alphas, d_alpha, *hessian):
        a.grad = da - xi * (hp - hm) / (2 * eps)


def candidate_latencies(net: Any, source: Any, num_classes: int) -> tuple[list[torch.Tensor], float]:
    """Per supernet layer, the table latency (ms) of each candidate; and the stem and head's."""
    spec = net.space.spec
    stem = L.stem_layout(Stem(**spec.stem), net.resolution, net.width, spec.act)
    last = net.layers[-1].layouts[0]
    head = L.head_layout(Head(**spec.head), last.out_channels, last.out_size, net.width, spec.act)
    constant = source.part_latency(stem_key(stem), stem) + source.part_latency(head_key(head, num_classes), head)
    per_layer = [torch.tensor([source.part_latency(layer_key(lay), lay) for lay in layer.layouts])
                 for layer in net.layers]
    return per_layer, constant
