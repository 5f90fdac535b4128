"""The block-kind registry: one record per kind drives the grammar, space files, layout and cost."""
from __future__ import annotations

import sys

import pytest

from search_spaces import kinds
from search_spaces.arch import BLOCK_KINDS, Block
from search_spaces.errors import ArchitectureError, SpaceError
from search_spaces.schema import BLOCK_OPTIONS
from tests.test_schema import load_text


def test_every_kind_is_registered_once_in_the_grammars_order():
    assert BLOCK_KINDS == kinds.kind_names() == ("mb", "fmb", "basic", "bottleneck", "convnext", "skip", "shuffle")
    assert BLOCK_OPTIONS["shuffle"] == {"kernel": 3, "act": None}  # what a space file may set, from the record


def test_the_registry_refuses_a_second_kind_of_one_name_and_unknown_fields():
    shuffle = kinds.block_kind("shuffle")
    with pytest.raises(ValueError, match="registered already"):
        kinds.register(shuffle)
    with pytest.raises(ValueError, match="unknown fields .'depth'.; allowed: kernel, expansion, se, groups, act"):
        kinds.register(kinds.BlockKind("odd", "", frozenset({"depth"}), {}, "m:C", shuffle.mid_channels, shuffle.cost))


def test_a_kind_pins_the_fields_it_does_not_read_and_checks_its_own_rules():
    unit = Block.parse("shuffle_k5_e6_c116_s2_se0.25")  # expansion and SE mean nothing to a shuffle unit
    assert (unit.kernel, unit.expansion, unit.se) == (5, 1.0, 0.0) and str(unit) == "shuffle_k5_c116_s2"
    with pytest.raises(ArchitectureError, match="block 'shuffle': channels must be even .* got 115"):
        Block.parse("shuffle_k3_c115")


def test_a_space_file_offers_a_kind_exactly_its_records_options(tmp_path):
    text = """
name: mine
resolution: 32
stem: {kernel: 3, stride: 1, channels: 16}
head: {channels: 64}
stages:
  - {channels: 24, stride: 2, blocks: {shuffle: {kernel: [3, 5, 7]}, mb: {expansion: [3, 6]}}}
"""
    assert load_text(tmp_path, text).size == 5
    with pytest.raises(SpaceError, match=r"stages\[0\].blocks.shuffle.*expansion.*allowed: kernel, act, channels"):
        load_text(tmp_path, text.replace("kernel: [3, 5, 7]", "expansion: [3]"))


def test_parsing_and_costing_a_network_of_any_kind_imports_no_torch():
    import subprocess

    code = ("import sys; from search_spaces.cost import cost; "
            "print(cost('shufflenet@224_relu:stem_k3_s2_c24_pool:shuffle_k3_c116_s2_r4:head_c1024').params, "
            "'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[1] == "False"
