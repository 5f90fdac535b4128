"""The block-kind registry: one record per kind drives the grammar, space files, layout and cost."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from search_spaces import kinds
from search_spaces.arch import BLOCK_KINDS, Architecture, Block
from search_spaces.builder import build_model
from search_spaces.cost import cost
from search_spaces.errors import ArchitectureError, SpaceError
from search_spaces.kinds.record import FIELDS
from search_spaces.layout import resolve
from search_spaces.schema import BLOCK_OPTIONS
from tests.search_spaces.test_schema import load_text

# Per optional field, a token that sets it to a value other than the neutral one, and that value.
_TOKENS = {"kernel": ("k5", 5), "expansion": ("e4", 4.0), "se": ("se0.25", 0.25), "groups": ("g2", 2),
           "act": ("silu", "silu")}


def test_every_kind_is_registered_once_in_the_grammars_order():
    assert BLOCK_KINDS == kinds.kind_names() == ("mb", "fmb", "basic", "bottleneck", "convnext", "skip", "shuffle")
    assert BLOCK_OPTIONS["shuffle"] == {"kernel": 3, "act": None}  # what a space file may set, from the record


def test_the_registry_refuses_a_second_kind_of_one_name_and_unknown_fields():
    shuffle = kinds.block_kind("shuffle")
    with pytest.raises(ValueError, match="registered already"):
        kinds.register(shuffle)
    with pytest.raises(ValueError, match="unknown fields .'depth'.; allowed: kernel, expansion, se, groups, act"):
        kinds.register(kinds.BlockKind("odd", "", frozenset({"depth"}), {}, "m:C", shuffle.mid_channels, shuffle.cost))


def test_a_kind_refuses_the_fields_it_does_not_read_and_checks_its_own_rules():
    with pytest.raises(ArchitectureError, match="'e6' sets an expansion, which 'shuffle' blocks do not have; "
                                                "'shuffle' accepts k<kernel>, c<channels>, s<stride>, "):
        Block.parse("shuffle_k5_e6_c116_s2_se0.25")  # expansion and SE mean nothing to a shuffle unit
    with pytest.raises(ArchitectureError, match="block 'shuffle': channels must be even .* got 115"):
        Block.parse("shuffle_k3_c115")
    with pytest.raises(ArchitectureError, match="block 'fmb': 'se0.25' needs expansion > 1"):
        Block.parse("fmb_k3_e1_c24_se0.25")  # no place for SE in one kxk conv: refused, not dropped


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("kind", BLOCK_KINDS)
def test_every_token_is_built_or_refused(kind, field):
    """Every registered kind x every optional field: a field the kind uses round-trips through the
    string and changes the network that is built and costed; any other is refused in one line
    naming the token and the kind, from a string or from the constructor."""
    token, value = _TOKENS[field]
    base = "_e4" if kind == "fmb" and field == "se" else ""  # a fused-MBConv needs width for its SE
    text = f"{kind}{base}_c16_{token}"
    if field in kinds.block_kind(kind).uses:
        block = Block.parse(text)
        assert getattr(block, field) == value and token in str(block).split("_")
        assert Block.parse(str(block)) == block
        plain = f"{kind}{base}_c16"
        nets = [Architecture.parse(f"t@32_relu:stem_k3_s1_c16:{b}:head_c32") for b in (block, plain)]
        built = [build_model(net, num_classes=10) for net in nets]
        assert repr(built[0]) != repr(built[1])  # the token changed the layers that were built
        assert sum(p.numel() for p in built[0].parameters()) == cost(nets[0], num_classes=10).params
        assert built[0](torch.randn(1, 3, 32, 32)).shape == (1, 10)
        return
    for attempt in (lambda: Block.parse(text), lambda: Block(kind, 16, **{field: value})):
        with pytest.raises(ArchitectureError) as err:
            attempt()
        message = str(err.value)
        assert "\n" not in message and f"{token!r} sets" in message
        assert f"{kind!r} blocks do not have" in message
        assert f"{kind!r} accepts c<channels>" in message or f"{kind!r} accepts k<kernel>" in message


def test_squeeze_excitation_on_resnet_blocks_is_built_as_regnety_and_se_resnet():
    """The issue's example: the SE token is printed back and built, squeezing the block input."""
    text = "resnet@224_relu:stem_k3_s2_c32:bottleneck_k3_e1_c48_s2_g6_se0.25:head_pool"
    arch = Architecture.parse(text)
    assert str(arch) == text
    layer = resolve(arch).layers[0]
    assert (layer.mid_channels, layer.se_channels) == (48, 8)  # round(0.25 * 32 in), on 48 inner channels
    bottleneck = build_model(arch).stages[0][0]
    assert (bottleneck.se.fc1.in_channels, bottleneck.se.fc1.out_channels) == (48, 8)
    assert isinstance(bottleneck.se.activation, torch.nn.ReLU) and bottleneck.se.fc1.bias is not None
    basic = resolve(Architecture.parse("r@32_relu:stem_k3_s1_c16:basic_k3_c32_s2_se0.25:head_pool")).layers[0]
    assert (basic.mid_channels, basic.se_channels) == (32, 4)  # on the output width, squeezing the input


def test_a_space_file_cannot_offer_a_field_its_kind_does_not_build(tmp_path):
    text = """
name: mine
resolution: 32
stem: {kernel: 3, stride: 1, channels: 16}
head: {channels: 64}
stages:
  - {channels: 24, stride: 2, blocks: {convnext: {kernel: 7}, basic: {se: [0, 0.25]}}}
"""
    assert load_text(tmp_path, text).size == 3  # convnext, basic, basic with SE
    with pytest.raises(SpaceError, match=r"stages\[0\].blocks.convnext.se.*allowed: kernel, expansion, act"):
        load_text(tmp_path, text.replace("kernel: 7", "se: [0, 0.25]"))
    with pytest.raises(SpaceError, match=r"stages\[0\].ops\[1\]: .*'k3' sets a kernel, which 'skip' blocks"):
        load_text(tmp_path, text.replace("blocks: {convnext: {kernel: 7}, basic: {se: [0, 0.25]}}",
                                         "ops: [mb_k3_e3, skip_k3]"))


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
    code = ("import sys; from search_spaces.cost import cost; "
            "print(cost('shufflenet@224_relu:stem_k3_s2_c24_pool:shuffle_k3_c116_s2_r4:head_c1024').params, "
            "'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[1] == "False"
