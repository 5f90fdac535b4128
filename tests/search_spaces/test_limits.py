"""Which architectures nas agrees to build: every reference model and shipped space's members pass,
the limits and the kernel rule sit where they say, and the memory estimate follows the resolution."""
from __future__ import annotations

import random

import pytest

from search_spaces import zoo
from search_spaces.arch import Architecture
from search_spaces.cost import cost
from search_spaces.errors import ArchitectureError, ConfigError
from search_spaces.layout import resolve
from search_spaces.limits import BuildLimits, activation_mb, check_buildable, check_space_buildable
from search_spaces.registry import load_space, space_names


@pytest.mark.parametrize("name", zoo.names())
def test_every_reference_model_is_buildable(name):
    check_buildable(zoo.reference(name))


@pytest.mark.parametrize("name", space_names())
def test_every_shipped_space_is_buildable(name):
    space = load_space(name)
    check_space_buildable(space)
    rng = random.Random(0)
    for _ in range(20):
        arch = space.sample(rng)
        if isinstance(arch, Architecture):
            check_buildable(arch)


def test_a_kernel_may_reach_across_its_map_but_not_beyond():
    # the first layer meets an 8x8 map (16 px after a stride-2 stem): a radius of 7 still touches it
    check_buildable(Architecture.parse("mbconv@16_relu:stem_k3_s2_c8:mb_k15_c8:head_c16"))
    with pytest.raises(ArchitectureError, match="kernel 17 on a 8x8 feature map; .* at most 15"):
        check_buildable(Architecture.parse("mbconv@16_relu:stem_k3_s2_c8:mb_k17_c8:head_c16"))


def test_the_limits_are_where_they_say():
    b0 = zoo.reference("efficientnet_b0")

    params, memory = cost(b0).params, activation_mb(resolve(b0))
    check_buildable(b0, limits=BuildLimits(max_params=params, max_activation_mb=memory))
    with pytest.raises(ArchitectureError, match="max_params"):
        check_buildable(b0, limits=BuildLimits(max_params=params - 1))
    with pytest.raises(ArchitectureError, match="max_activation_mb"):
        check_buildable(b0, limits=BuildLimits(max_activation_mb=memory * 0.99))


def test_activation_memory_grows_with_the_square_of_the_resolution():
    small = Architecture.parse("mbconv@64_relu:stem_k3_s2_c16:mb_k3_e6_c24_s2:head_c64")
    large = Architecture.parse("mbconv@128_relu:stem_k3_s2_c16:mb_k3_e6_c24_s2:head_c64")
    assert activation_mb(resolve(large)) == pytest.approx(4 * activation_mb(resolve(small)))


@pytest.mark.parametrize("options, fragment", [
    ({"max_params": 0}, "limits.max_params: must be a positive number"),
    ({"max_params": "lots"}, "limits.max_params: must be a positive number"),
    ({"max_activation": 1}, "max_activation_mb"),
])
def test_bad_limits_are_one_line_errors(options, fragment):
    with pytest.raises(ConfigError, match=fragment):
        BuildLimits.from_options(options)


def test_limits_given_as_text_are_read_as_numbers():
    assert BuildLimits.from_options({"max_params": "2e9"}).max_params == 2e9
