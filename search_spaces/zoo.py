"""Reference CNNs as Architectures: torchvision's models in this project's grammar.

EfficientNet-B1..B7 are not written out: they are B0 passed through `scale_architecture`, the same
function that scales a user's winner.
"""
from __future__ import annotations

from functools import cache

from search_spaces.arch import Architecture
from search_spaces.errors import unknown
from search_spaces.scaling import scale_architecture

_EFFICIENTNET_B0 = (
    "mbconv@224_silu_sd0.2:stem_k3_s2_c32:mb_k3_e1_c16_se0.25:mb_k3_e6_c24_s2_se0.25_r2:"
    "mb_k5_e6_c40_s2_se0.25_r2:mb_k3_e6_c80_s2_se0.25_r3:mb_k5_e6_c112_se0.25_r3:"
    "mb_k5_e6_c192_s2_se0.25_r4:mb_k3_e6_c320_se0.25:head_c1280_d0.2"
)

# (width, depth, resolution, dropout): the EfficientNet paper's compound-scaled family, as torchvision.
EFFICIENTNET_SCALING: dict[str, tuple[float, float, int, float]] = {
    "efficientnet_b0": (1.0, 1.0, 224, 0.2),
    "efficientnet_b1": (1.0, 1.1, 240, 0.2),
    "efficientnet_b2": (1.1, 1.2, 260, 0.3),
    "efficientnet_b3": (1.2, 1.4, 300, 0.3),
    "efficientnet_b4": (1.4, 1.8, 380, 0.4),
    "efficientnet_b5": (1.6, 2.2, 456, 0.4),
    "efficientnet_b6": (1.8, 2.6, 528, 0.5),
    "efficientnet_b7": (2.0, 3.1, 600, 0.5),
}

_STRINGS = {
    "efficientnet_v2_s": (
        "fused_mbconv@384_silu_sd0.2:stem_k3_s2_c24:fmb_k3_e1_c24_r2:fmb_k3_e4_c48_s2_r4:"
        "fmb_k3_e4_c64_s2_r4:mb_k3_e4_c128_s2_se0.25_r6:mb_k3_e6_c160_se0.25_r9:"
        "mb_k3_e6_c256_s2_se0.25_r15:head_c1280_d0.2"
    ),
    "mobilenet_v2": (
        "mobilenet@224_relu6:stem_k3_s2_c32:mb_k3_e1_c16:mb_k3_e6_c24_s2_r2:mb_k3_e6_c32_s2_r3:"
        "mb_k3_e6_c64_s2_r4:mb_k3_e6_c96_r3:mb_k3_e6_c160_s2_r3:mb_k3_e6_c320:head_c1280_d0.2"
    ),
    "mobilenet_v3_large": (
        "mobilenet@224_hswish:stem_k3_s2_c16:mb_k3_e1_c16_relu:"
        "mb_k3_e4_c24_s2_relu,mb_k3_e3_c24_relu:mb_k5_e3_c40_s2_hse0.25_relu_r3:"
        "mb_k3_e6_c80_s2,mb_k3_e2.5_c80,mb_k3_e2.3_c80_r2:mb_k3_e6_c112_hse0.25_r2:"
        "mb_k5_e6_c160_s2_hse0.25_r3:head_c960_f1280_d0.2"
    ),
    "mobilenet_v3_small": (
        "mobilenet@224_hswish:stem_k3_s2_c16:mb_k3_e1_c16_s2_hse0.25_relu:"
        "mb_k3_e4.5_c24_s2_relu,mb_k3_e3.67_c24_relu:mb_k5_e4_c40_s2_hse0.25,mb_k5_e6_c40_hse0.25_r2:"
        "mb_k5_e3_c48_hse0.25_r2:mb_k5_e6_c96_s2_hse0.25_r3:head_c576_f1024_d0.2"
    ),
    "resnet18": (
        "resnet@224_relu:stem_k7_s2_c64_pool:basic_k3_c64_r2:basic_k3_c128_s2_r2:"
        "basic_k3_c256_s2_r2:basic_k3_c512_s2_r2:head_pool"
    ),
    "resnet50": (
        "resnet@224_relu:stem_k7_s2_c64_pool:bottleneck_k3_e0.25_c256_r3:"
        "bottleneck_k3_e0.25_c512_s2_r4:bottleneck_k3_e0.25_c1024_s2_r6:"
        "bottleneck_k3_e0.25_c2048_s2_r3:head_pool"
    ),
    "resnext50_32x4d": (
        "resnet@224_relu:stem_k7_s2_c64_pool:bottleneck_k3_e0.5_c256_g32_r3:"
        "bottleneck_k3_e0.5_c512_s2_g32_r4:bottleneck_k3_e0.5_c1024_s2_g32_r6:"
        "bottleneck_k3_e0.5_c2048_s2_g32_r3:head_pool"
    ),
    # RegNetY-400MF: bottlenecks of ratio 1, group width 8 (groups = width / 8), SE of a quarter of
    # the block input, a plain 3x3 stem and an average-pool head.
    "regnet_y_400mf": (
        "regnet@224_relu:stem_k3_s2_c32:bottleneck_k3_e1_c48_s2_g6_se0.25:"
        "bottleneck_k3_e1_c104_s2_g13_se0.25_r3:bottleneck_k3_e1_c208_s2_g26_se0.25_r6:"
        "bottleneck_k3_e1_c440_s2_g55_se0.25_r6:head_pool"
    ),
    "shufflenet_v2_x0_5": (
        "shufflenet@224_relu:stem_k3_s2_c24_pool:shuffle_k3_c48_s2_r4:shuffle_k3_c96_s2_r8:"
        "shuffle_k3_c192_s2_r4:head_c1024"
    ),
    "shufflenet_v2_x1_0": (
        "shufflenet@224_relu:stem_k3_s2_c24_pool:shuffle_k3_c116_s2_r4:shuffle_k3_c232_s2_r8:"
        "shuffle_k3_c464_s2_r4:head_c1024"
    ),
    "convnext_tiny": (
        "convnext@224_gelu_sd0.1:stem_patch_k4_s4_c96:convnext_k7_e4_c96_r3:"
        "convnext_k7_e4_c192_s2_r3:convnext_k7_e4_c384_s2_r9:convnext_k7_e4_c768_s2_r3:head_norm"
    ),
}


def names() -> list[str]:
    """Every reference model name."""
    return sorted([*EFFICIENTNET_SCALING, *_STRINGS])


@cache
def reference(name: str) -> Architecture:
    """The Architecture of a reference model, e.g. ``reference("resnet50")``."""
    if name in EFFICIENTNET_SCALING:
        width, depth, resolution, dropout = EFFICIENTNET_SCALING[name]
        b0 = Architecture.parse(_EFFICIENTNET_B0)
        return scale_architecture(b0, width, depth, resolution, dropout)
    if name in _STRINGS:
        return Architecture.parse(_STRINGS[name])
    raise unknown("model", name, names())
