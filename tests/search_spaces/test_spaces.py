"""Search spaces: round trips, canonical forms, exact sizes, membership, genetic operators."""
from __future__ import annotations

import itertools
import json
import math
import pickle
import random
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from search_spaces import CategoricalSpace, list_spaces, load_space, zoo
from search_spaces.arch import Architecture
from search_spaces.errors import SpaceError, UnknownNameError
from search_spaces.space import SearchSpace

SPACES = [s.name for s in list_spaces()]
seeds = st.integers(0, 2**32 - 1)
fast = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_all_issue_spaces_ship():
    assert {"mbconv", "fused_mbconv", "resnet", "convnext", "mixed", "nasbench_macro", "shufflenet"} <= set(SPACES)


@pytest.mark.parametrize("name", SPACES)
@fast
@given(seed=seeds)
def test_members_round_trip(name, seed):
    space = load_space(name)
    arch = space.sample(random.Random(seed))
    assert Architecture.parse(str(arch)) == arch
    assert Architecture.from_json(arch.to_json()) == arch
    assert Architecture.from_yaml(arch.to_yaml()) == arch
    assert space.from_choices(space.to_choices(arch)) == arch
    assert space.from_string(space.to_string(arch)) == arch
    canon = space.canonical(arch)
    assert space.canonical(canon) == canon
    assert space.key(arch) == space.key(Architecture.parse(str(arch)))
    assert space.validate(arch) == canon
    assert len(space.encode(arch)) == len(space.encode(space.sample(random.Random(seed + 1))))


@pytest.mark.parametrize("name", SPACES)
def test_memoised_encoding_and_choices_equal_the_plain_walk_cold_and_warm(name):
    space, rng = load_space(name), random.Random(3)
    archs = [space.sample(rng) for _ in range(40)]
    for _ in range(2):  # cold, then served from the per-stage memos
        for arch in archs:
            assert space.encode(arch) == SearchSpace.encode(space, arch)  # the generic walk over choices
            assert space.from_choices(space.to_choices(arch)) == arch
        space.forget_memos()
    copy = pickle.loads(pickle.dumps(archs))  # blocks hash their text, which a new object rehashes
    assert copy == archs and [hash(a) for a in copy] == [hash(a) for a in archs]
    assert {b for a in copy for s in a.stages for b in s} == {b for a in archs for s in a.stages for b in s}


@pytest.mark.parametrize("name", SPACES)
@fast
@given(seed=seeds)
def test_mutation_and_crossover_stay_in_the_space(name, seed):
    space = load_space(name)
    rng = random.Random(seed)
    a, b = space.sample(rng), space.sample(rng)
    child = space.mutate(a, rng)
    space.validate(child)
    before, after = space.to_choices(a), space.to_choices(child)
    changed = {k for k in before if before.get(k) != after.get(k)}
    # One dimension changes; dimensions it switches on or off come along.
    assert len(changed - {k for k in before if k not in after}) <= 1 or any(
        k.endswith((".depth", ".block")) for k in changed
    )
    space.validate(space.crossover(a, b, rng))


@pytest.mark.parametrize("name", SPACES)
def test_sampling_is_deterministic_per_seed(name):
    space = load_space(name)
    first = [space.key(space.sample(random.Random(7))) for _ in range(3)]
    assert first == [space.key(space.sample(random.Random(7))) for _ in range(3)]


def brute_force_size(space) -> int:
    """Enumerate every assignment of the dimensions, keeping only active ones."""
    dims = space.dimensions()
    seen = set()
    for values in itertools.product(*(d.values for d in dims)):
        choices = {}
        for d, v in zip(dims, values):
            if d.active(choices):
                choices[d.name] = v
        seen.add(tuple(sorted(choices.items())))
    return len(seen)


def test_size_matches_brute_force_on_small_spaces(tmp_path):
    text = """
name: tiny
resolution: [32, 48]
stem: {kernel: 3, stride: 1, channels: 8}
head: {channels: 32}
stages:
  - {channels: 16, stride: 2, depth: [1, 2, 3], granularity: layer, block: mb, kernel: [3, 5], se: [0, 0.25]}
  - {channels: 24, stride: 2, depth: [1, 2], blocks: {mb: {expansion: [3, 6]}, convnext: {kernel: 7}, skip: {}}}
"""
    path = tmp_path / "tiny.yaml"
    path.write_text(text)
    space = load_space(path)
    assert space.size == brute_force_size(space) == 2 * (4 + 16 + 64) * (2 * (2 + 1 + 1))
    assert load_space("nasbench_macro").size == 3**8 == brute_force_size(load_space("nasbench_macro"))


def test_mbconv_size_by_hand():
    per_stage = 3 * 4 * 2  # kernel x expansion x SE, chosen once per stage
    depths = [2, 3, 3, 3, 3, 3, 2]
    assert load_space("mbconv").size == 4 * 3 * math.prod(d * per_stage for d in depths)


@pytest.mark.parametrize(
    "space, model",
    [("mbconv", "efficientnet_b0"), ("resnet", "resnet18"), ("resnet", "resnet50"),
     ("resnet", "resnext50_32x4d"), ("convnext", "convnext_tiny")],
)
def test_reference_models_are_members(space, model):
    arch = zoo.reference(model)
    assert load_space(space).validate(arch) == arch


def test_non_members_are_rejected_naming_the_field():
    space = load_space("mbconv")
    b0 = zoo.reference("efficientnet_b0")
    bad = b0.replace(stages=(b0.stages[0], (replace(b0.stages[1][0], kernel=9),), *b0.stages[2:]))
    with pytest.raises(SpaceError, match=r"stage 2 layer 0 kernel 9 not in \[3, 5, 7\]"):
        space.validate(bad)
    with pytest.raises(SpaceError, match="resolution 999"):
        space.validate(b0.replace(resolution=999))
    with pytest.raises(SpaceError, match=r"activation relu not in \[silu\]"):
        space.validate(zoo.reference("resnet50"))


def test_identity_order_does_not_change_the_key():
    space = load_space("nasbench_macro")
    # Stage 2 "201" and "210": after the strided layer, identity and MBConv in either order.
    a, b = space.from_code("12201202"), space.from_code("12210220")
    assert a != b and space.key(a) == space.key(b)
    assert space.code(space.canonical(a)) == "12210220"
    # An identity that carries the stride is a 1x1 conv: a different network.
    assert space.key(space.from_code("01200000")) != space.key(space.from_code("10200000"))


def test_unknown_space_name_suggests_close_matches():
    with pytest.raises(UnknownNameError, match="did you mean mbconv"):
        load_space("mbconf")


def test_categorical_space_has_the_same_api():
    space = CategoricalSpace({"lr": [0.1, 0.01], "layers": [1, 2, 3], "act": ["relu", "silu"]})
    rng = random.Random(0)
    member = space.sample(rng)
    assert space.size == 12 and space.validate(member) == member
    assert space.from_choices(space.to_choices(member)) == member
    assert json.loads(space.key(member)) == member
    assert space.from_string(space.to_string(member)) == member
    assert len(space.encode(member)) == 1 + 1 + 2
    space.validate(space.mutate(member, rng))
    space.validate(space.crossover(member, space.sample(rng), rng))
    with pytest.raises(SpaceError, match="lr=0.5 is not allowed"):
        space.validate({"lr": 0.5, "layers": 1, "act": "relu"})
