"""NAS-Bench-Macro parity: our space builds exactly the benchmark's 6,561 networks."""
from __future__ import annotations

import random

import pytest
import torch

from search_spaces import load_space
from search_spaces.builder import build_model
from search_spaces.cost import cost


def test_all_6561_keys_map_both_ways_with_exact_params_and_macs(table):
    space = load_space("nasbench_macro")
    assert len(table) == space.size == 6561
    for key, row in table.items():
        arch = space.from_code(key)
        assert space.code(arch) == key
        c = cost(arch, num_classes=10)
        assert c.params == row["params"], key
        assert abs(c.macs - row["flops"]) <= 0.01 * row["flops"], key


def _built_params(arch):
    with torch.device("meta"):
        return sum(p.numel() for p in build_model(arch, 10).parameters())


def test_built_models_match_the_table_on_a_sample(table):
    space = load_space("nasbench_macro")
    for key in random.Random(0).sample(sorted(table), 100):
        assert _built_params(space.from_code(key)) == table[key]["params"], key


@pytest.mark.slow
@pytest.mark.integration  # every slow test is also integration: -m "not integration" leaves them out
def test_built_models_match_the_table_everywhere(table):
    space = load_space("nasbench_macro")
    for key, row in table.items():
        assert _built_params(space.from_code(key)) == row["params"], key
