"""The Architecture value, its canonical string, and the resolved layout."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from search_spaces.arch import ACTIVATIONS, Architecture, Block, Head, Stem
from search_spaces.errors import ArchitectureError, NasError
from search_spaces.kinds import block_kind
from search_spaces.layout import resolve
from search_spaces.scaling import make_divisible, scale_stage_depth

B0 = (
    "mbconv@224_silu_sd0.2:stem_k3_s2_c32:mb_k3_e1_c16_se0.25:mb_k3_e6_c24_s2_se0.25_r2:"
    "mb_k5_e6_c40_s2_se0.25_r2:mb_k3_e6_c80_s2_se0.25_r3:mb_k5_e6_c112_se0.25_r3:"
    "mb_k5_e6_c192_s2_se0.25_r4:mb_k3_e6_c320_se0.25:head_c1280_d0.2"
)


def test_string_round_trip_is_exact():
    arch = Architecture.parse(B0)
    assert str(arch) == B0
    assert Architecture.parse(str(arch)) == arch
    assert hash(arch) == hash(Architecture.parse(B0))


def test_dict_json_yaml_round_trips():
    arch = Architecture.parse(B0)
    assert Architecture.from_dict(arch.to_dict()) == arch
    assert Architecture.from_json(arch.to_json()) == arch
    assert Architecture.from_yaml(arch.to_yaml()) == arch
    assert Architecture.from_yaml(f"arch: '{B0}'") == arch


def test_adjacent_identical_groups_merge_into_repeats():
    a = Architecture.parse("x@32_relu:stem_k3_s1_c16:mb_k3_e3_c24_s2,mb_k3_e3_c24,mb_k3_e3_c24:head_c64")
    b = Architecture.parse("x@32_relu:stem_k3_s1_c16:mb_k3_e3_c24_s2_r3:head_c64")
    assert a == b and str(a) == str(b)
    # A later stride-2 group is a different layer and must not merge.
    c = Architecture.parse("x@32_relu:stem_k3_s1_c16:mb_k3_e3_c24,mb_k3_e3_c24_s2:head_c64")
    assert len(c.stages[0]) == 2


def test_fields_a_kind_does_not_build_are_refused_where_given_and_neutral_elsewhere():
    # neutral values are what a block's dict (and ``replace``) carries: accepted, so they round-trip
    assert Block("skip", 64) == Block("skip", 64, kernel=1, expansion=1, se=0, groups=1, act=None)
    assert (Block("skip", 64).kernel, Block("mb", 16).kernel) == (1, 3)  # kernel 3 where a kind reads one
    assert Block("mb", 16, se=0, se_hard=True) == Block("mb", 16)  # hse without a ratio says nothing
    with pytest.raises(ArchitectureError, match="^block 'skip': 'k5' sets a kernel, which 'skip' blocks do "
                                                "not have; 'skip' accepts c<channels>, s<stride>, r<repeats>$"):
        Block("skip", 64, kernel=5)
    with pytest.raises(ArchitectureError, match="'k3' sets a kernel"):  # given, though 3 is the default
        Block("skip", 64, kernel=3)
    with pytest.raises(ArchitectureError, match="'e4' sets an expansion, which 'basic' blocks do not have"):
        Block("basic", 64, expansion=4)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("mbconv224:stem_k3_s2_c32:mb_k3_c16:head_c8", "malformed architecture string"),
        ("a@224_silu:stem_k3_s2_c32:mbx_k3_c16:head_c8", "unknown block type 'mbx'"),
        ("a@224_silu:stem_k3_s2_c32:mb_k4_c16:head_c8", "kernel must be a positive odd integer"),
        ("a@224_silu:stem_k3_s2_c32:mb_k3_c16_z9:head_c8", "unknown token 'z9'"),
        ("a@224_silu:stem_k3_s2_c32:skip_k3_c16:head_c8", "'k3' sets a kernel, which 'skip' blocks do not have"),
        ("a@224_silu:stem_k3_s2_c32:mb_k0_c16:head_c8", "kernel must be a positive odd integer, got 0"),
        ("a@224_silu:stem_k3_s2_c32:mb_k3:head_c8", "missing channels"),
        ("a@224_silu:stem_k3_s2_c32:mb_k3_c16_s3:head_c8", "stride must be 1 or 2"),
        ("a@224_mish:stem_k3_s2_c32:mb_k3_c16:head_c8", "unknown token 'mish'"),
        ("a@2x4_silu:stem_k3_s2_c32:mb_k3_c16:head_c8", "is not a number"),
        ("a@224_silu:stem_k3_s2_c32:mb_k3_e1.2.3_c16:head_c8", "is not a number"),
        ("a@224_silu:stem_k3_s2_c32:mb_k3_c16:tail_c8", "expected the head"),
        ("a@224_silu:stem_k3_s2_c32:mb_k3_c16:head_d0.2", "needs channels"),
    ],
)
def test_malformed_strings_give_one_line_errors(text, fragment):
    with pytest.raises(ArchitectureError) as err:
        Architecture.parse(text)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)
    assert isinstance(err.value, NasError)


def test_make_divisible_matches_torchvision_rule():
    assert make_divisible(32 * 1.1, 8) == 32
    assert make_divisible(320 * 1.1, 8) == 352
    assert make_divisible(88.08, 8) == 88
    assert make_divisible(10, 8) == 16  # never drops more than 10%
    assert make_divisible(3, 8) == 8


def test_scale_stage_depth_rounds_up_and_keeps_proportions():
    assert scale_stage_depth([3], 1.1) == [4]
    assert scale_stage_depth([1], 3.1) == [4]
    assert scale_stage_depth([2, 2], 1.5) == [3, 3]
    assert scale_stage_depth([1, 3], 2.0) == [2, 6]
    assert sum(scale_stage_depth([1, 1, 1], 1.4)) == 5


def test_layout_applies_width_depth_and_sizes():
    b2 = Architecture.parse(B0).replace(width=1.1, depth=1.2, resolution=260)
    layout = resolve(b2)
    assert layout.stem.out_channels == 32
    assert [l.out_channels for l in layout.layers][-1] == 352
    assert layout.head.channels == 1408
    assert len(layout.layers) == 23  # torchvision's efficientnet_b2 has 23 MBConv blocks
    assert layout.layers[0].in_size == 130 and layout.head.in_size == 9
    # Expanded channels follow make_divisible(in * e, 8); SE squeezes the block input by 4.
    first_expand = layout.layers[2]  # stage 1 has two e1 layers in B2
    assert first_expand.mid_channels == make_divisible(first_expand.in_channels * 6)
    assert first_expand.se_channels == first_expand.in_channels // 4
    assert layout.layers[0].drop_path == 0 and 0 < layout.layers[-1].drop_path < 0.2


def test_layout_convnext_and_resnet_conventions():
    cnx = Architecture.parse(
        "convnext@224_gelu:stem_patch_k4_s4_c96:convnext_k7_e4_c96_r3:convnext_k7_e4_c192_s2_r3:head_norm"
    )
    layers = resolve(cnx).layers
    assert layers[0].in_size == 56 and layers[3].out_size == 28
    assert layers[0].mid_channels == 384 and layers[3].downsample and not layers[4].downsample
    rx = Architecture.parse(
        "resnet@224_relu:stem_k7_s2_c64_pool:bottleneck_k3_e0.5_c256_g32_r3:head_pool"
    )
    first = resolve(rx).layers[0]
    assert first.in_size == 56 and first.mid_channels == 128 and first.downsample


_FIELD_VALUES = {
    "kernel": st.sampled_from([1, 3, 5, 7]),
    "expansion": st.sampled_from([0.25, 0.5, 1, 2.5, 3.67, 4, 6]),
    "se": st.sampled_from([0, 0.25, 0.125]),
    "groups": st.sampled_from([1, 2, 8, 32]),
    "act": st.sampled_from([None, *ACTIVATIONS]),
}


@st.composite
def blocks(draw) -> Block:
    """A block of any kind, given only the fields its kind reads (it refuses the others)."""
    kind = draw(st.sampled_from(["mb", "fmb", "basic", "bottleneck", "convnext", "skip"]))
    uses = block_kind(kind).uses
    fields = {name: draw(values) for name, values in _FIELD_VALUES.items() if name in uses}
    if kind == "fmb" and fields["expansion"] == 1:
        fields["se"] = 0  # an unwidened fused-MBConv has no place for SE (refused)
    if "se" in uses:
        fields["se_hard"] = draw(st.booleans())
    return Block(kind, channels=draw(st.integers(1, 512)), stride=draw(st.sampled_from([1, 2])),
                 repeats=draw(st.integers(1, 4)), **fields)


archs = st.builds(
    Architecture,
    stem=st.builds(Stem, channels=st.integers(1, 64), kind=st.sampled_from(["conv", "patch"]),
                   pool=st.booleans()),
    stages=st.lists(st.lists(blocks(), min_size=1, max_size=3), min_size=1, max_size=4),
    head=st.one_of(
        st.builds(Head, channels=st.integers(1, 2048), hidden=st.sampled_from([0, 1024]),
                  dropout=st.sampled_from([0, 0.2])),
        st.builds(Head, kind=st.sampled_from(["pool", "norm"])),
    ),
    resolution=st.integers(8, 600),
    act=st.sampled_from(ACTIVATIONS),
    width=st.sampled_from([0.5, 1.0, 1.1, 1.25]),
    depth=st.sampled_from([1.0, 1.2, 3.1]),
    drop_path=st.sampled_from([0.0, 0.2]),
    space=st.sampled_from(["mbconv", "nasbench_macro", "my-space.v2"]),
)


@given(archs)
def test_any_architecture_round_trips(arch):
    assert Architecture.parse(str(arch)) == arch
    assert Architecture.from_json(arch.to_json()) == arch
    assert str(Architecture.parse(str(arch))) == str(arch)
