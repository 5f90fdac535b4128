"""The largest member once per kind of weights (``largest_per_kind=true``): which members a step
trains, in which order, and how the setting is refused, resumed and kept."""
from __future__ import annotations

import random

import pytest
import torch

from evaluators.base import DEFAULT_DATA
from evaluators.supernet import SupernetTraining
from evaluators.supernet_config import SupernetConfig
from nas.cli.commands import main
from nas.oneshot.supernet import train_supernet
from search_spaces import load_space
from search_spaces.cost import cost
from search_spaces.elastic import kind_groups, largest_of_kinds, layer_kinds
from search_spaces.macro import extreme_member

DATA = {**DEFAULT_DATA, "limit": 200}
FAST = {"epochs": 1, "batch_size": 64, "random_subnets": 1, "resolution": 16, "largest_per_kind": True}


def macs(arch):
    return cost(arch, 10).macs


def test_mbconvs_other_kind_is_the_largest_member_at_expansion_1_everywhere():
    space = load_space("mbconv")
    largest = extreme_member(space, macs, largest=True)
    (other,) = largest_of_kinds(space, largest, kind_groups(space), macs)
    big, small = space.to_choices(largest), space.to_choices(other)
    moved = {k for k in big if big[k] != small[k]}
    assert moved == {k for k in big if k.endswith(".expansion")}  # nothing else changes
    assert {small[k] for k in moved} == {1}


def test_every_kind_of_a_mixed_space_gets_its_largest_member():
    space = load_space("mixed")
    groups = kind_groups(space)
    largest = extreme_member(space, macs, largest=True)
    others = largest_of_kinds(space, largest, groups, macs)
    assert others and largest not in others and len(set(others)) == len(others)
    kinds = {layer_kinds(largest), *(layer_kinds(a) for a in others)}
    assert len(kinds) == 1 + len(others)  # each one trains layers of kinds the others do not
    members = [space.to_choices(a) for a in (largest, *others)]
    for name, grouped in groups.items():
        if name.endswith(".block"):  # every block type of every stage is some member's
            taken = {next(i for i, g in enumerate(grouped) if m[name] in g) for m in members if name in m}
            assert taken == set(range(len(grouped))), name


@pytest.mark.parametrize("sampling", ["sandwich", "fair"])
def test_a_step_trains_the_largest_then_its_other_kinds_at_the_steps_resolution_and_width(tmp_path, sampling):
    config = SupernetConfig(**{**FAST, "sampling": sampling})
    training = SupernetTraining("mbconv", DATA, tmp_path, config)
    (other,) = training.largest_kinds
    space = training.space
    for _ in range(10):
        members = training.members(random.Random(_))
        first, second = space.to_choices(members[0]), space.to_choices(members[1])
        assert members[0].resolution == members[1].resolution and first["width"] == second["width"]
        assert {k: v for k, v in second.items() if k not in ("resolution", "width")} == \
            {k: v for k, v in space.to_choices(other).items() if k not in ("resolution", "width")}
        assert all(v == 6 for k, v in first.items() if k.endswith(".expansion"))  # the teacher comes first
    plain = SupernetTraining("mbconv", DATA, tmp_path / "plain", SupernetConfig(**{**FAST, "sampling": sampling,
                                                                                  "largest_per_kind": False}))
    assert plain.largest_kinds == []
    # the same draws otherwise: only the other kind's largest member is added
    assert len(training.members(random.Random(3))) == len(plain.members(random.Random(3))) + 1


def test_uniform_sampling_trains_one_member_whatever_the_setting(tmp_path):
    training = SupernetTraining("mbconv", DATA, tmp_path, SupernetConfig(**{**FAST, "sampling": "uniform"}))
    assert training.largest_kinds == [] and len(training.members(random.Random(0))) == 1


def test_the_setting_is_kept_in_the_checkpoint_and_a_resume_must_agree(tmp_path):
    ckpt = train_supernet("nasbench_macro", DATA, tmp_path, "kinds", threads=1, **FAST)
    state = torch.load(ckpt, weights_only=True)
    assert state["config"]["largest_per_kind"] is True
    changed = SupernetTraining("nasbench_macro", DATA, ckpt.parent, SupernetConfig(**{**FAST, "epochs": 2,
                                                                                      "largest_per_kind": False}))
    with pytest.raises(Exception, match="largest_per_kind"):
        changed.resume()
    del state["config"]["largest_per_kind"]  # a checkpoint written before the setting existed
    torch.save(state, ckpt)
    old = SupernetTraining("nasbench_macro", DATA, ckpt.parent, SupernetConfig(**{**FAST, "largest_per_kind": False}))
    assert old.resume() and old.epoch == 1


def test_the_command_line_refuses_a_bad_value_in_one_line(tmp_path, capsys):
    assert main(["supernet", "train", "space=nasbench_macro", "largest_per_kind=maybe", f"out={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "largest_per_kind" in err and len(err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())
