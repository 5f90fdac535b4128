"""`build_model`: one builder that turns any Architecture into a plain ``torch.nn.Module``."""
from __future__ import annotations

import torch
from torch import nn

from search_spaces.arch import Architecture
from search_spaces.blocks import make_block, make_head, make_stem
from search_spaces.layout import resolve


class Network(nn.Module):
    """stem -> stages -> head; nothing NAS-specific inside, so a winner exports as any model."""

    def __init__(self, stem: nn.Module, stages: nn.Sequential, head: nn.Module) -> None:
        super().__init__()
        self.stem = stem
        self.stages = stages
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


def build_model(arch: Architecture | str, num_classes: int = 1000) -> Network:
    """Build the network an architecture (or its canonical string) describes."""
    if isinstance(arch, str):
        arch = Architecture.parse(arch)
    layout = resolve(arch)
    stages: list[list[nn.Module]] = [[] for _ in arch.stages]
    for layer in layout.layers:
        stages[layer.stage].append(make_block(layer))
    model = Network(
        make_stem(layout.stem),
        nn.Sequential(*(nn.Sequential(*s) for s in stages)),
        make_head(layout.head, num_classes),
    )
    _init_weights(model)
    return model


def _init_weights(model: Network) -> None:
    """torchvision's initialisation (He fan-out convs, unit norms, uniform linears), except the
    classifier's scale.

    torchvision draws the classifier from U(+-1/sqrt(classes)), made for 1000 classes: at 10 a
    1280-wide head starts with logits ten times larger and a short training spends its first
    epochs undoing them. The classifier here is U(+-1/sqrt(features)), PyTorch's default for a
    Linear (and torchvision's ResNet classifier): the first logits' scale no longer depends on the
    number of classes or on the head's width. Zero, the other fix, starves a short training of
    gradients (docs/benchmarks.md, "The classifier's initialisation at 10 classes").
    """
    classifier = model.head[-1]
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            bound = 1.0 / (m.in_features if m is classifier else m.out_features) ** 0.5
            nn.init.uniform_(m.weight, -bound, bound)
            nn.init.zeros_(m.bias)
