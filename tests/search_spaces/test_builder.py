"""The builder: every block kind runs forward and returns a plain module."""
from __future__ import annotations

import random

import pytest
import torch

from search_spaces.arch import Architecture
from search_spaces.builder import Network, build_model
from tests.archgen import random_arch

KINDS = {
    "mb": "mb_k5_e4_c24_s2_se0.25,mb_k3_e4_c24_hse0.25",
    "fmb": "fmb_k3_e4_c24_s2_se0.25,fmb_k3_e1_c24",
    "basic": "basic_k3_c24_s2_se0.25,basic_k3_c24",
    "bottleneck": "bottleneck_k3_e0.5_c32_s2_g8_se0.25,bottleneck_k3_e0.5_c32_g8",
    "convnext": "convnext_k7_e4_c24_s2_r2",
    "skip": "skip_c24_s2,skip_c24",
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_block_kind_forward(kind):
    arch = Architecture.parse(f"t@32_relu_sd0.1:stem_k3_s1_c16:{KINDS[kind]}:head_c32_d0.1")
    model = build_model(arch, num_classes=7)
    assert isinstance(model, Network)
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 7) and torch.isfinite(out).all()


def test_string_and_value_build_the_same_network():
    text = "t@32_silu:stem_k3_s2_c16:mb_k3_e6_c24_s2_se0.25_r2:head_c64"
    a, b = build_model(text, 10), build_model(Architecture.parse(text), 10)
    assert [tuple(p.shape) for p in a.parameters()] == [tuple(p.shape) for p in b.parameters()]


def test_stochastic_depth_only_acts_in_training():
    arch = Architecture.parse("t@16_relu_sd0.9:stem_k3_s1_c8:mb_k3_e3_c8_r4:head_c16")
    torch.manual_seed(0)
    model = build_model(arch, 4).eval()
    x = torch.randn(4, 3, 16, 16)
    assert torch.equal(model(x), model(x))
    model.train()
    torch.manual_seed(1)
    first = model(x)
    torch.manual_seed(2)
    assert not torch.allclose(first, model(x))


@pytest.mark.parametrize("seed", range(20))
def test_random_architectures_run_forward(seed):
    arch = random_arch(random.Random(seed))
    out = build_model(arch, 5).eval()(torch.randn(1, 3, arch.resolution, arch.resolution))
    assert out.shape == (1, 5)


@pytest.mark.parametrize("classes", [10, 1000])
@pytest.mark.parametrize("head", ["head_c1280", "head_c256", "head_pool", "head_c576_f1024"])
def test_the_first_logits_scale_with_the_features_not_with_the_classes(classes, head):
    """The classifier is U(+-1/sqrt(features)): its bound follows the head's width, never the number
    of classes, and other linears (a hidden head layer) keep torchvision's 1/sqrt(out_features)."""
    torch.manual_seed(0)
    model = build_model(f"t@32_relu:stem_k3_s2_c16:mb_k3_e4_c24_s2:{head}", classes)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    classifier = linears[-1]
    assert classifier.out_features == classes
    bound = classifier.in_features ** -0.5
    assert classifier.weight.abs().max() <= bound and classifier.weight.abs().max() > 0.9 * bound
    assert not classifier.bias.any()
    for hidden in linears[:-1]:
        assert hidden.weight.abs().max() > 0.9 * hidden.out_features ** -0.5


def test_a_built_network_starts_near_the_uniform_prediction():
    """With 10 classes and a 1280-wide head, torchvision's U(+-1/sqrt(classes)) starts at logits of
    standard deviation about 5 and a loss far above chance; U(+-1/sqrt(features)) starts below 1."""
    torch.manual_seed(0)
    model = build_model("t@32_silu:stem_k3_s2_c32:mb_k3_e4_c24_s2_se0.25:mb_k5_e6_c40_s2:head_c1280", 10).train()
    logits = model(torch.randn(64, 3, 32, 32))
    assert logits.std() < 1.0
    assert torch.nn.functional.cross_entropy(logits, torch.randint(0, 10, (64,))) < 1.5 * torch.log(torch.tensor(10.0))
