"""Does the classifier's initialisation hold back short trainings at 10 classes? Paired over seeds.

torchvision's EfficientNet/MobileNet initialise the classifier from U(+-1/sqrt(classes)): with 1000
classes the first logits are small, with 10 they are ten times larger (logit std about 4.6 on a
built mbconv member) and the first epoch's loss starts far above chance. Every arm below builds the
network with `build_model`, then sets the classifier's weights to the arm's rule, so the script
measures the same thing whatever the builder's default is.

Inits: ``torchvision`` U(+-1/sqrt(classes)); ``zero``; ``fan_in`` U(+-1/sqrt(features)), PyTorch's
default for ``nn.Linear``; ``1/sqrt(1000)`` torchvision's rule as at 1000 classes.

Landscapes (each network trained from the same seeds under every init, side by side):

    python benchmarks/classifier_init.py --landscape tiny --seeds 6
        the test suite's regime: two small networks, 320 digits, 3 epochs of batch 32 (30 steps)
    python benchmarks/classifier_init.py --landscape fashion-recipe
        member00 and EfficientNet-B0, the ground truth's first 3 epochs (Fashion-MNIST, 6,000-image
        subset, AdamW 0.002, warm-up 1 epoch, batch 128, 21 px)
    python benchmarks/classifier_init.py --landscape digits
    python benchmarks/classifier_init.py --landscape fashion
        the proxy evaluator's default recipe (what `nas run` trains) on digits, and on a 6,000-image
        Fashion-MNIST subset; 6 seeded mbconv members, EfficientNet-B0, MobileNetV3-Small, ResNet-18

``--inits a,b,...`` picks arms (the first is the one the others are compared with). Prints each
network's accuracy per seed, then per init: mean accuracy, the paired difference to the first arm
(mean +- std over network x seed), and seed-0-to-seed-1 Kendall tau of the ranking.
"""
from __future__ import annotations

import argparse
import math
import random

import numpy as np
import torch
from scipy.stats import kendalltau
from torch import nn

from evaluators.proxy import ProxyEvaluator
from evaluators.train_config import TrainConfig
from evaluators.training import fit
from search_spaces import load_space, zoo
from search_spaces.arch import Architecture
from search_spaces.builder import build_model

MEMBER = ("mbconv@168_silu_w0.75_sd0.2:stem_k3_s2_c32:mb_k5_e1_c16_se0.25:mb_k3_e4_c24_s2_se0.25:mb_k7_e3_c40_s2_r3:"
          "mb_k3_e1_c80_s2_r2:mb_k5_e3_c112_se0.25_r4:mb_k5_e1_c192_s2_se0.25_r4:mb_k3_e1_c320:head_c1280_d0.2")
TINY_RESNET = "resnet@224_relu:stem_k3_s2_c16:basic_k3_c16:basic_k3_c32_s2:head_pool"
TINY_MBCONV = "mbconv@224_silu:stem_k3_s2_c16:mb_k3_e1_c16_se0.25:mb_k5_e4_c24_s2:mb_k3_e4_c40_s2_se0.25:head_c256"
INITS = ("torchvision", "zero", "fan_in", "1/sqrt(1000)")


def initialise(model: nn.Module, init: str, classes: int) -> None:
    """Set the classifier (the network's last Linear) to ``init``'s rule."""
    classifier = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    if init == "zero":
        nn.init.zeros_(classifier.weight)
    elif init == "fan_in":  # PyTorch's default for nn.Linear (and torchvision's ResNet classifier)
        bound = 1 / math.sqrt(classifier.in_features)
        nn.init.uniform_(classifier.weight, -bound, bound)
    else:
        fan = {"torchvision": classes, "1/sqrt(1000)": 1000}[init]
        nn.init.uniform_(classifier.weight, -1 / math.sqrt(fan), 1 / math.sqrt(fan))
    nn.init.zeros_(classifier.bias)


def landscape(name: str):
    """(networks, inits, evaluator, train config, pixels rule) of one landscape."""
    if name == "tiny":  # the test suite's regime: 320 digits, two small networks, 20-30 steps
        nets = [("resnet-c32", Architecture.parse(TINY_RESNET)), ("mbconv-c40", Architecture.parse(TINY_MBCONV))]
        evaluator = ProxyEvaluator(data={"name": "digits", "limit": 400}, epochs=3, batch_size=32)
        return nets, INITS, evaluator, evaluator.train, lambda arch: 24
    if name == "fashion-recipe":
        evaluator = ProxyEvaluator(data={"name": "fashion_mnist", "limit": 6000})
        nets = [("member00", Architecture.parse(MEMBER)), ("efficientnet_b0", zoo.reference("efficientnet_b0"))]
        cfg = TrainConfig(epochs=3, batch_size=128, lr=0.002, warmup_epochs=1.0)
        return nets, INITS, evaluator, cfg, lambda arch: 21
    data = {"name": "digits"} if name == "digits" else {"name": "fashion_mnist", "limit": 6000}
    evaluator = ProxyEvaluator(data=data)
    space = load_space("mbconv")
    evaluator.check_space(space)
    rng = random.Random(0)
    nets = [(f"sample{i}", space.sample(rng)) for i in range(6)]
    nets += [(n, zoo.reference(n)) for n in ("efficientnet_b0", "mobilenet_v3_small", "resnet18")]
    return nets, INITS, evaluator, evaluator.train, evaluator.train_resolution


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--landscape", choices=("tiny", "fashion-recipe", "digits", "fashion"), default="digits")
    parser.add_argument("--inits", default=None, help=f"comma-separated, of {', '.join(INITS)} (default: all)")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    nets, inits, evaluator, cfg, pixels = landscape(args.landscape)
    inits = tuple(args.inits.split(",")) if args.inits else inits
    seeds = tuple(range(args.seeds))
    classes = evaluator.num_classes
    print(f"landscape {args.landscape}: {len(nets)} networks x {len(seeds)} seeds x {len(inits)} inits, "
          f"{cfg.epochs} epochs, lr {cfg.lr}, batch {cfg.batch_size}", flush=True)
    print(f"{'network':<20}{'init':<14}{'accuracy % per seed':>24}{'ep-1 loss':>11}", flush=True)
    acc: dict[str, np.ndarray] = {init: np.zeros((len(nets), len(seeds))) for init in inits}
    for n, (name, arch) in enumerate(nets):
        px = pixels(arch)
        for init in inits:
            first = []
            for s, seed in enumerate(seeds):
                torch.manual_seed(seed)
                model = build_model(arch, classes)
                initialise(model, init, classes)
                epochs: dict[int, dict[str, float]] = {}
                result = fit(model, evaluator.data.loader("train", px, cfg.batch_size, seed),
                             evaluator.data.batches("val", px), cfg, torch.device("cpu"),
                             report=lambda e, m, seen=epochs: seen.setdefault(e, m))
                acc[init][n, s] = result.accuracy
                first.append(epochs[1]["train_loss"])
            print(f"{name:<20}{init:<14}{' '.join(f'{a:5.1f}' for a in acc[init][n]):>24}"
                  f"{np.mean(first):>11.2f}", flush=True)
    base = inits[0]
    print(f"\n{'init':<14}{'mean %':>8}{'diff vs ' + base:>22}{'wins':>7}{'seed tau':>10}")
    for init in inits:
        diff = (acc[init] - acc[base]).ravel()
        tau = kendalltau(acc[init][:, 0], acc[init][:, 1]).statistic if len(seeds) > 1 else float("nan")
        print(f"{init:<14}{acc[init].mean():>8.1f}{diff.mean():>+13.1f} +- {diff.std(ddof=1):<5.1f}"
              f"{int((diff > 0).sum()):>4}/{diff.size}{tau:>10.2f}")


if __name__ == "__main__":
    main()
