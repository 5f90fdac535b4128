"""Proxy evaluator overhead: its wall time vs a bare PyTorch loop doing the same training.

Both train the same network (same seed) on the same digits tensors at the same resolution, with
AdamW, a linear warm-up into cosine decay, label smoothing and channels-last tensors, for the same
epochs; both then re-estimate BatchNorm statistics on 8 batches and score the validation split
once. The bare loop slices the tensors itself; the evaluator goes through its DataLoader, its
training module, seeding, thread and RNG isolation and the cost model. Runs alternate (evaluator,
bare, bare, evaluator, ...) so machine noise hits both alike; printed is the ratio of total times
(target <= 1.03).

    python benchmarks/proxy_overhead.py [--archs 4] [--rounds 3] [--epochs 3]
"""
from __future__ import annotations

import argparse
import random
import time

import torch
from torch import nn

from evaluators.proxy import ProxyEvaluator, arch_seed
from search_spaces import load_space
from search_spaces.builder import build_model


def bare_loop(arch, proxy: ProxyEvaluator, epochs: int) -> float:
    """Validation accuracy of ``arch`` trained by a plain loop; the recipe of ProxyEvaluator."""
    cfg = proxy.train
    pixels = proxy.train_resolution(arch)
    x, y = proxy.data.at("train", pixels)
    xv, yv = proxy.data.at("val", pixels)
    seed = arch_seed(proxy.seed, str(arch))
    torch.manual_seed(seed)
    model = build_model(arch, proxy.num_classes).to(memory_format=torch.channels_last)
    decay = [p for p in model.parameters() if p.ndim > 1]
    rest = [p for p in model.parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": rest, "weight_decay": 0.0}], lr=cfg.lr)
    steps = len(y) // cfg.batch_size
    warmup = round(cfg.warmup_epochs * steps)
    sched = torch.optim.lr_scheduler.SequentialLR(opt, [
        torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.01, total_iters=warmup),
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps - warmup),
    ], milestones=[warmup])
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=gen)
        for i in range(steps):
            idx = order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            loss = loss_fn(model(x[idx].contiguous(memory_format=torch.channels_last)), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for m in norms:
            m.reset_running_stats()
            m.momentum = None
        order = torch.randperm(len(y), generator=gen)
        for i in range(cfg.bn_recalibration):
            idx = order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            model(x[idx].contiguous(memory_format=torch.channels_last))
        model.eval()
        correct = sum((model(xv[i:i + 256].contiguous(memory_format=torch.channels_last)).argmax(1)
                       == yv[i:i + 256]).sum().item() for i in range(0, len(yv), 256))
    return 100.0 * correct / len(yv)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    space = load_space("mbconv")
    proxy = ProxyEvaluator(epochs=args.epochs)
    proxy.check_space(space)
    rng = random.Random(0)
    archs = [space.sample(rng) for _ in range(args.archs)]
    totals = {"evaluator": 0.0, "bare": 0.0}
    runs = {"evaluator": lambda a: proxy(a)["accuracy"], "bare": lambda a: bare_loop(a, proxy, args.epochs)}
    for r in range(args.rounds + 1):  # round 0 warms up
        for i, arch in enumerate(archs):
            order = ["evaluator", "bare"] if (r + i) % 2 == 0 else ["bare", "evaluator"]
            for name in order:
                start = time.perf_counter()
                runs[name](arch)
                if r > 0:
                    totals[name] += time.perf_counter() - start
    n = args.rounds * args.archs
    print(f"mbconv on digits, {args.archs} architectures x {args.rounds} rounds, {args.epochs} epochs, "
          f"{torch.get_num_threads()} threads")
    print(f"evaluator {totals['evaluator'] / n:.3f} s/arch, bare loop {totals['bare'] / n:.3f} s/arch, "
          f"ratio {totals['evaluator'] / totals['bare']:.3f} (target <= 1.03)")


if __name__ == "__main__":
    main()
