"""Progressive shrinking (``shrink=progressive``, Once-for-All's order): the phases in order, the
members each phase trains, resume in the middle of a phase, and one-line errors for bad values."""
from __future__ import annotations

import random

import pytest
import torch

from evaluators.base import DEFAULT_DATA
from evaluators.supernet import SupernetTraining, elastic_in, load_checkpoint
from evaluators.supernet_config import OPENS, PHASES, SupernetConfig
from nas.cli.commands import main
from nas.oneshot.supernet import train_supernet
from search_spaces.errors import ConfigError

DATA = {**DEFAULT_DATA, "limit": 200}
FAST = {"epochs": 4, "batch_size": 64, "sampling": "sandwich", "random_subnets": 1, "resolution": 16,
        "shrink": "progressive"}


@pytest.mark.parametrize(("epochs", "phases"), [
    (4, ["largest", "kernel", "depth", "all"]),
    (6, ["largest", "kernel", "depth", "all", "all", "all"]),
    (11, ["largest"] * 2 + ["kernel"] * 2 + ["depth"] * 2 + ["all"] * 5),
])
def test_the_epochs_split_over_the_phases_in_once_for_alls_order(epochs, phases):
    config = SupernetConfig(epochs=epochs, shrink="progressive")
    assert [config.phase(e) for e in range(epochs)] == phases
    assert {SupernetConfig(epochs=epochs).phase(e) for e in range(epochs)} == {"all"}  # no shrinking


def test_each_phase_opens_its_choices_and_keeps_the_earlier_ones():
    dims = ["resolution", "width", "s2.kernel", "s2.depth", "s2.expansion", "s2.se"]
    opened = {phase: [d for d in dims if elastic_in(d, phase)] for phase in PHASES}
    assert opened == {"largest": ["resolution"], "kernel": ["resolution", "s2.kernel"],
                      "depth": ["resolution", "s2.kernel", "s2.depth"], "all": dims}
    assert [*OPENS, "all"] == list(PHASES)  # every phase but `all` names what it opens, in order


def test_members_vary_only_in_what_their_phase_opens(tmp_path):
    training = SupernetTraining("mbconv", DATA, tmp_path, SupernetConfig(**{**FAST, "random_subnets": 3}))
    space, rng = training.space, random.Random(0)
    largest = space.to_choices(training.largest)
    seen = {phase: set() for phase in PHASES}
    for phase in PHASES:
        for _ in range(20):
            members = training.members(rng, phase)
            assert len(set(members)) == len(members)  # members a phase makes equal are trained once
            assert space.to_choices(members[0])["s1.expansion"] == largest["s1.expansion"]  # the teacher first
            for member in members:
                choices = space.to_choices(member)
                fixed = {k: v for k, v in choices.items() if not elastic_in(k, phase)}
                assert fixed == {k: largest[k] for k in fixed}, phase
                seen[phase] |= {k for k, v in choices.items() if v != largest[k]}
    assert seen["largest"] == {"resolution"}
    assert {k.rsplit(".", 1)[-1] for k in seen["kernel"]} == {"resolution", "kernel"}
    assert {k.rsplit(".", 1)[-1] for k in seen["depth"]} == {"resolution", "kernel", "depth"}
    assert {k.rsplit(".", 1)[-1] for k in seen["all"]} >= {"width", "expansion", "se"}


@pytest.mark.integration
def test_a_training_stopped_in_the_middle_of_the_phases_resumes_as_if_uninterrupted(tmp_path):
    reference = train_supernet("nasbench_macro", DATA, tmp_path, "whole", threads=1, **FAST)

    def stop_after_second(stats):
        if stats.epoch == 2:  # after the kernel phase, before the depth phase
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_supernet("nasbench_macro", DATA, tmp_path, "cut", threads=1, on_epoch=stop_after_second, **FAST)
    assert load_checkpoint(tmp_path / "supernets" / "cut")["epoch"] == 2
    with pytest.raises(ConfigError, match="shrink"):
        train_supernet("nasbench_macro", DATA, tmp_path, "cut", resume=True, threads=1, **{**FAST, "shrink": "none"})
    resumed, whole = load_checkpoint(train_supernet(out=tmp_path, run_id="cut", resume=True, threads=1)), \
        load_checkpoint(reference)
    assert resumed["config"]["shrink"] == "progressive" and resumed["epoch"] == whole["epoch"] == 4
    for key, tensor in whole["model"].items():
        assert torch.allclose(resumed["model"][key].float(), tensor.float(), atol=1e-6), key
    assert [h["loss"] for h in resumed["history"]] == pytest.approx([h["loss"] for h in whole["history"]])


def test_a_checkpoint_from_before_shrinking_existed_resumes_as_shrink_none(tmp_path):
    old = {**FAST, "epochs": 1, "shrink": "none"}
    ckpt = train_supernet("nasbench_macro", DATA, tmp_path, "old", threads=1, **old)
    state = torch.load(ckpt, weights_only=True)
    del state["config"]["shrink"]  # written before the setting existed
    torch.save(state, ckpt)
    training = SupernetTraining("nasbench_macro", DATA, ckpt.parent, SupernetConfig(**old))
    assert training.resume() and training.epoch == 1


@pytest.mark.parametrize(("settings", "message"), [
    ({"shrink": "ofa"}, "shrink: 'ofa' is not one of none, progressive"),
    ({"shrink": "progressive", "epochs": 3}, ("epochs: shrink=progressive needs at least 4 (one per phase: "
                                              "largest, kernel, depth, all), got 3")),
])
def test_bad_values_are_one_line_errors(settings, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        SupernetConfig(**settings)


def test_the_command_line_refuses_a_bad_shrink_in_one_line(tmp_path, capsys):
    assert main(["supernet", "train", "space=nasbench_macro", "shrink=ofa", f"out={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "shrink: 'ofa' is not one of none, progressive" in err and len(err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())
