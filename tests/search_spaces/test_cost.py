"""The analytic cost model equals the built model (params) and FlopCounterMode (MACs)."""
from __future__ import annotations

import random

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from search_spaces.builder import build_model
from search_spaces.cost import cost, count_macs, count_params
from tests.archgen import random_arch


def measured(arch, num_classes=10):
    with torch.device("meta"):
        model = build_model(arch, num_classes).eval()
        with FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, 3, arch.resolution, arch.resolution))
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops() // 2


# 50 seeds in the quick loop; all 300 in CI (the rest are marked integration)
@pytest.mark.parametrize("seed", [s if s < 50 else pytest.param(s, marks=pytest.mark.integration) for s in range(300)])
def test_cost_model_is_exact_on_random_architectures(seed):
    arch = random_arch(random.Random(seed))
    params, macs = measured(arch)
    assert count_params(arch, 10) == params, str(arch)
    assert count_macs(arch, 10) == macs, str(arch)


def test_cost_accepts_strings():
    text = "x@32_relu:stem_k3_s1_c16:mb_k3_e3_c24_s2:head_c64"
    assert cost(text) == cost(text.replace("x@", "y@"))
