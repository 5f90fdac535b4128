"""Does the classifier's initialisation hold back short trainings at 10 classes? Paired over seeds.

torchvision's EfficientNet/MobileNet initialise the classifier from U(+-1/sqrt(classes)): with 1000
classes the first logits are small, with 10 they are ten times larger (logit std about 4.6 on a
built mbconv member) and the first epoch's loss starts far above chance. This trains two networks
for the ground truth's first 3 epochs on Fashion-MNIST (6,000-image subset, AdamW 0.002, warm-up 1
epoch, batch 128) with that init, a zero-initialised classifier, and U(+-1/sqrt(1000)), for two
seeds each, and prints the validation accuracy and the first epoch's training loss.

    python benchmarks/classifier_init.py
"""
from __future__ import annotations

import math

import torch
from torch import nn

from evaluators.data import dataset_from_options
from evaluators.training import TrainConfig, fit
from search_spaces import zoo
from search_spaces.arch import Architecture
from search_spaces.builder import build_model

MEMBER = ("mbconv@168_silu_w0.75_sd0.2:stem_k3_s2_c32:mb_k5_e1_c16_se0.25:mb_k3_e4_c24_s2_se0.25:mb_k7_e3_c40_s2_r3:"
          "mb_k3_e1_c80_s2_r2:mb_k5_e3_c112_se0.25_r4:mb_k5_e1_c192_s2_se0.25_r4:mb_k3_e1_c320:head_c1280_d0.2")
INITS = ("torchvision", "zero", "1/sqrt(1000)")


def initialise(model: nn.Module, init: str) -> None:
    classifier = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    if init == "zero":
        nn.init.zeros_(classifier.weight)
    elif init == "1/sqrt(1000)":
        nn.init.uniform_(classifier.weight, -1 / math.sqrt(1000), 1 / math.sqrt(1000))


def main() -> None:
    torch.set_num_threads(2)
    splits = dataset_from_options({"name": "fashion_mnist", "limit": 6000})
    cfg = TrainConfig(epochs=3, batch_size=128, lr=0.002, warmup_epochs=1.0)
    print(f"{'network':<16}{'init':<14}{'val % (seed 0, 1)':>20}{'epoch-1 loss':>16}")
    for name, arch in (("member00", Architecture.parse(MEMBER)), ("efficientnet_b0", zoo.reference("efficientnet_b0"))):
        for init in INITS:
            accs, first = [], []
            for seed in (0, 1):
                torch.manual_seed(seed)
                model = build_model(arch, 10)
                initialise(model, init)
                epochs: dict[int, dict[str, float]] = {}
                result = fit(model, splits.loader("train", 21, cfg.batch_size, seed), splits.batches("val", 21), cfg,
                             torch.device("cpu"), report=lambda e, m, seen=epochs: seen.setdefault(e, m))
                accs.append(result.accuracy)
                first.append(epochs[1]["train_loss"])
            print(f"{name:<16}{init:<14}{accs[0]:>10.1f}{accs[1]:>10.1f}{first[0]:>8.2f}{first[1]:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
