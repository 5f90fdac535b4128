"""Torch modules for every block kind, stem and head, each built from one resolved layout entry.

Structures follow torchvision's reference implementations, so a reference architecture built here
has the same layers, parameter count and cost as torchvision's model.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import nn
from torchvision.ops import Conv2dNormActivation, SqueezeExcitation, StochasticDepth

from search_spaces.kinds import block_kind
from search_spaces.layout import HeadLayout, LayerLayout, StemLayout

_ACTIVATIONS: dict[str, Callable[..., nn.Module]] = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "silu": nn.SiLU,
    "hswish": nn.Hardswish,
    "gelu": nn.GELU,
}


def activation(name: str) -> Callable[..., nn.Module]:
    return _ACTIVATIONS[name]


def _inplace(name: str) -> Callable[..., nn.Module]:
    """Activation factory usable by Conv2dNormActivation (GELU takes no ``inplace``)."""
    act = _ACTIVATIONS[name]
    return act if name != "gelu" else (lambda inplace=None: nn.GELU())


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW tensor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


def _se(layer: LayerLayout) -> nn.Module:
    """Squeeze-excitation on the layer's inner width: the squeeze runs the layer's activation (as
    torchvision's EfficientNet and RegNetY), the gate is a sigmoid; ``hse`` is MobileNetV3's."""
    if layer.se_hard:  # MobileNetV3: ReLU squeeze, hard-sigmoid gate
        return SqueezeExcitation(layer.mid_channels, layer.se_channels, nn.ReLU, nn.Hardsigmoid)
    act = activation(layer.act)
    if layer.act != "gelu":  # as torchvision's EfficientNet: the squeeze activation works in place
        act = partial(act, inplace=True)
    return SqueezeExcitation(layer.mid_channels, layer.se_channels, act)


class _Residual(nn.Module):
    """Adds the input back after the body, with stochastic depth on the body when training."""

    def __init__(self, body: nn.Module, residual: bool, drop_path: float) -> None:
        super().__init__()
        self.block = body
        self.use_res = residual
        self.stochastic_depth = StochasticDepth(drop_path, "row") if residual else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        if self.use_res:
            out = self.stochastic_depth(out)
            out += x  # in place, as torchvision: one tensor less per block
        return out


class MBConv(_Residual):
    """Inverted residual (MobileNetV2/V3, EfficientNet): expand 1x1, depthwise kxk, SE, project."""

    def __init__(self, layer: LayerLayout) -> None:
        act = _inplace(layer.act)
        layers: list[nn.Module] = []
        if layer.mid_channels != layer.in_channels:
            layers.append(Conv2dNormActivation(layer.in_channels, layer.mid_channels, 1, activation_layer=act))
        layers.append(
            Conv2dNormActivation(
                layer.mid_channels, layer.mid_channels, layer.kernel, layer.stride,
                groups=layer.mid_channels, activation_layer=act,
            )
        )
        if layer.se_channels:
            layers.append(_se(layer))
        layers.append(
            Conv2dNormActivation(layer.mid_channels, layer.out_channels, 1, activation_layer=None)
        )
        super().__init__(nn.Sequential(*layers), layer.residual, layer.drop_path)


class FusedMBConv(_Residual):
    """Fused inverted residual (EfficientNetV2): kxk expand conv, optional SE, 1x1 project."""

    def __init__(self, layer: LayerLayout) -> None:
        act = _inplace(layer.act)
        layers: list[nn.Module] = []
        if layer.mid_channels != layer.in_channels:
            layers.append(
                Conv2dNormActivation(
                    layer.in_channels, layer.mid_channels, layer.kernel, layer.stride, activation_layer=act
                )
            )
            if layer.se_channels:
                layers.append(_se(layer))
            layers.append(
                Conv2dNormActivation(layer.mid_channels, layer.out_channels, 1, activation_layer=None)
            )
        else:
            if layer.se_channels:
                raise ValueError("fused-MBConv with expansion 1 has no place for SE")
            layers.append(
                Conv2dNormActivation(
                    layer.in_channels, layer.out_channels, layer.kernel, layer.stride, activation_layer=act
                )
            )
        super().__init__(nn.Sequential(*layers), layer.residual, layer.drop_path)


def _shortcut(layer: LayerLayout) -> nn.Module | None:
    if not layer.downsample:
        return None
    return nn.Sequential(
        nn.Conv2d(layer.in_channels, layer.out_channels, 1, layer.stride, bias=False),
        nn.BatchNorm2d(layer.out_channels),
    )


class BasicBlock(nn.Module):
    """ResNet basic block: two kxk convs, optional SE, projection shortcut when the shape changes.

    SE sits where SE-ResNet (Hu et al. 2018) and timm's ``seresnet*`` put it: on the output width,
    after bn2, before the shortcut is added. Its squeeze width follows the grammar's one rule for
    ``se``, a fraction of the block *input* (as RegNetY and EfficientNet), not SE-ResNet's fraction
    of the SE's own width: the two agree wherever the block keeps its width and differ only on a
    stage's widening first block (squeeze half as wide), and one rule keeps ``se0.25`` meaning the
    same thing on every kind and in every space.
    """

    def __init__(self, layer: LayerLayout) -> None:
        super().__init__()
        pad = (layer.kernel - 1) // 2
        self.conv1 = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel, layer.stride, pad, bias=False)
        self.bn1 = nn.BatchNorm2d(layer.out_channels)
        self.conv2 = nn.Conv2d(layer.out_channels, layer.out_channels, layer.kernel, 1, pad, bias=False)
        self.bn2 = nn.BatchNorm2d(layer.out_channels)
        self.se = _se(layer) if layer.se_channels else None  # on mid_channels: the output width
        self.act = _inplace(layer.act)(inplace=True)
        self.downsample = _shortcut(layer)
        self.stochastic_depth = StochasticDepth(layer.drop_path, "row")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.act(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.se is not None:
            out = self.se(out)
        out = self.stochastic_depth(out)
        out += identity
        return self.act(out)


class Bottleneck(nn.Module):
    """ResNet/ResNeXt bottleneck (v1.5: stride on the grouped kxk conv), and RegNet's (torchvision's
    ``ResBottleneckBlock`` has the same layers: projection shortcut, activation after the add).

    SE sits where RegNetY puts it: on the inner width, after the kxk conv's BN and activation,
    before the last 1x1 (SE-ResNet puts it after the last 1x1 instead); one place, the one a
    torchvision model uses, so ``regnet_y_400mf`` is built exactly.
    """

    def __init__(self, layer: LayerLayout) -> None:
        super().__init__()
        mid, pad = layer.mid_channels, (layer.kernel - 1) // 2
        self.conv1 = nn.Conv2d(layer.in_channels, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, layer.kernel, layer.stride, pad, groups=layer.groups, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.se = _se(layer) if layer.se_channels else None
        self.conv3 = nn.Conv2d(mid, layer.out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(layer.out_channels)
        self.act = _inplace(layer.act)(inplace=True)
        self.downsample = _shortcut(layer)
        self.stochastic_depth = StochasticDepth(layer.drop_path, "row")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.act(self.bn1(self.conv1(x)))
        out = self.act(self.bn2(self.conv2(out)))
        if self.se is not None:
            out = self.se(out)
        out = self.stochastic_depth(self.bn3(self.conv3(out)))
        out += identity
        return self.act(out)


class ConvNeXtBlock(nn.Module):
    """ConvNeXt block: depthwise kxk, LayerNorm, inverted MLP, layer scale; optional downsample."""

    def __init__(self, layer: LayerLayout) -> None:
        super().__init__()
        dim = layer.out_channels
        # torchvision places LayerNorm + strided conv between stages; here it opens the first layer.
        self.downsample = (
            nn.Sequential(
                LayerNorm2d(layer.in_channels, eps=1e-6),
                nn.Conv2d(layer.in_channels, dim, layer.stride, layer.stride),
            )
            if layer.downsample
            else nn.Identity()
        )
        self.dwconv = nn.Conv2d(dim, dim, layer.kernel, padding=(layer.kernel - 1) // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.fc1 = nn.Linear(dim, layer.mid_channels)
        self.act = activation(layer.act)()
        self.fc2 = nn.Linear(layer.mid_channels, dim)
        self.layer_scale = nn.Parameter(torch.full((dim, 1, 1), 1e-6))
        self.stochastic_depth = StochasticDepth(layer.drop_path, "row")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample(x)
        out = self.dwconv(x).permute(0, 2, 3, 1)
        out = self.fc2(self.act(self.fc1(self.norm(out)))).permute(0, 3, 1, 2)
        return x + self.stochastic_depth(self.layer_scale * out)


class Skip(nn.Module):
    """Identity layer; a 1x1 conv + BN where the shape changes (NAS-Bench-Macro's convention)."""

    def __init__(self, layer: LayerLayout) -> None:
        super().__init__()
        self.proj = _shortcut(layer) or nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class ShuffleUnit(nn.Module):
    """ShuffleNetV2 unit (torchvision's ``InvertedResidual`` with a kxk kernel): split the channels,
    run one half through 1x1, depthwise kxk, 1x1 and concatenate it with the other; where the shape
    changes, a second branch (depthwise kxk, 1x1) takes the whole input instead; then shuffle."""

    def __init__(self, layer: LayerLayout) -> None:
        super().__init__()
        half, k, stride, pad = layer.mid_channels, layer.kernel, layer.stride, (layer.kernel - 1) // 2
        self.split = not layer.downsample
        act = _inplace(layer.act)
        cin = half if self.split else layer.in_channels
        self.branch1 = nn.Sequential() if self.split else nn.Sequential(
            nn.Conv2d(cin, cin, k, stride, pad, groups=cin, bias=False), nn.BatchNorm2d(cin),
            nn.Conv2d(cin, half, 1, bias=False), nn.BatchNorm2d(half), act(inplace=True),
        )
        self.branch2 = nn.Sequential(
            nn.Conv2d(cin, half, 1, bias=False), nn.BatchNorm2d(half), act(inplace=True),
            nn.Conv2d(half, half, k, stride, pad, groups=half, bias=False), nn.BatchNorm2d(half),
            nn.Conv2d(half, half, 1, bias=False), nn.BatchNorm2d(half), act(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.split:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        n, c, h, w = out.shape
        return out.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)


def make_block(layer: LayerLayout) -> nn.Module:
    """The module of one layer, whatever its kind (the kind's record names its class)."""
    return block_kind(layer.kind).build(layer)


def make_stem(stem: StemLayout) -> nn.Module:
    if stem.kind == "patch":
        return nn.Sequential(
            nn.Conv2d(3, stem.out_channels, stem.kernel, stem.stride),
            LayerNorm2d(stem.out_channels, eps=1e-6),
        )
    layers: list[nn.Module] = [
        Conv2dNormActivation(3, stem.out_channels, stem.kernel, stem.stride, activation_layer=_inplace(stem.act))
    ]
    if stem.pool:
        layers.append(nn.MaxPool2d(3, 2, 1))
    return nn.Sequential(*layers)


def make_head(head: HeadLayout, num_classes: int) -> nn.Module:
    layers: list[nn.Module] = []
    if head.kind == "conv":
        layers.append(
            Conv2dNormActivation(head.in_channels, head.channels, 1, activation_layer=_inplace(head.act))
        )
    layers.append(nn.AdaptiveAvgPool2d(1))
    if head.kind == "norm":
        layers.append(LayerNorm2d(head.in_channels, eps=1e-6))
    layers.append(nn.Flatten(1))
    width = head.channels or head.in_channels
    if head.hidden:
        layers += [nn.Linear(width, head.hidden), _inplace(head.act)(inplace=True)]
        width = head.hidden
    if head.dropout:
        layers.append(nn.Dropout(head.dropout, inplace=True))
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)
