"""DARTS: the supernet, first- and second-order bilevel search, Gumbel paths, the latency-aware
loss, the collapse guard, and DARTS as a strategy of a run."""
from __future__ import annotations

import json

import pytest
import torch

from evaluators.data import load_dataset
from evaluators.latency import LatencySettings
from evaluators.latency.parts import part_module
from evaluators.latency.profile import space_parts
from evaluators.latency.source import LatencySource
from evaluators.latency.table import Calibration
from nas.cli.commands import main
from nas.profile import latency as nas_latency
from nas.run.api import search
from nas.strategies.darts import DartsConfig
from nas.strategies.darts_training import candidate_latencies, darts_search, expected_latency
from search_spaces import load_space
from search_spaces.errors import ConfigError
from search_spaces.supernet import Supernet
from tests.spaces import TINY

# Per-layer ops with a skip in every layer: what DARTS collapses onto when pushed.
SKIPPY = """\
name: skippy
resolution: 32
act: relu
stem: {kernel: 3, stride: 2, channels: 16}
head: {channels: 64}
stages:
  - {channels: 16, stride: 1, depth: 3, granularity: layer, ops: [skip, mb_k3_e3]}
  - {channels: 32, stride: 2, depth: 3, granularity: layer, ops: [skip, mb_k3_e3]}
"""
FAST = {"warmup": 0, "repeats": 2, "rounds": 2}


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return load_space(str(path))


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", limit=400)


def _profile(space_path, out):
    cfg = {**nas_latency.LATENCY_DEFAULTS, **FAST, "space": str(space_path), "out": str(out), "num_classes": 10}
    nas_latency.profile(nas_latency.open_session(cfg), calibrate_n=3)
    return LatencySource("table", load_space(str(space_path)), 10, LatencySettings(**FAST), out=out)


def _search(space, data, seed=0, latency=None, **options):
    torch.manual_seed(seed)
    net = Supernet(space, 32, 1.0, 10)
    table = candidate_latencies(net, latency, 10) if latency is not None else None
    cfg = DartsConfig(**{"epochs": 3, "warmup_epochs": 0, "batch_size": 32, "seed": seed, **options})
    return darts_search(net, data, cfg, torch.device("cpu"), table), net


@pytest.mark.parametrize("name", ["mbconv", "mixed", "nasbench_macro", "convnext"])
def test_a_supernet_derives_members_of_its_space(name):
    space = load_space(name)
    net = Supernet(space, space.spec.resolutions[-1], space.spec.widths[0], 10)
    with torch.no_grad():
        for alpha in net.alphas:
            alpha.copy_(torch.randn(alpha.shape))
    arch = net.derive()
    assert space.validate(arch) is not None and space.key(arch) == space.key(space.from_string(str(arch)))
    out = net(torch.randn(2, 3, 32, 32), *net.unit_weights("gumbel", 1.0, torch.Generator().manual_seed(0)))
    assert out.shape == (2, 10)


@pytest.mark.integration
def test_the_derived_architecture_is_a_member_and_the_same_for_the_same_seed(tiny, digits):
    first, _ = _search(tiny, digits, seed=3)
    again, _ = _search(tiny, digits, seed=3)
    other, _ = _search(tiny, digits, seed=4, alpha_lr=0.05)
    assert tiny.validate(first.derived) is not None and str(first.derived) == str(again.derived)
    assert first.history[-1]["probabilities"] == again.history[-1]["probabilities"]
    assert first.history[-1]["probabilities"] != other.history[-1]["probabilities"]
    assert len(first.history) == 3 and first.stopped is None


@pytest.mark.integration
def test_second_order_darts_moves_the_architecture_weights(tiny, digits):
    result, net = _search(tiny, digits, epochs=1, mode="soft", order=2, alpha_lr=0.01)
    assert all(torch.isfinite(a).all() for a in net.alphas)
    assert any(a.abs().sum() > 0 for a in net.alphas) and tiny.validate(result.derived) is not None


@pytest.mark.integration
def test_a_heavier_latency_weight_never_derives_a_slower_network(tiny, digits, tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    source = _profile(path, tmp_path / "out")
    # measured entries of a 2-run profile are noise; a table proportional to each part's size
    # keeps the test about DARTS, not about this machine

    for key, part in space_parts(tiny, 10).items():
        module, _ = part_module(part, 10)
        source.table.entries[key] = 0.01 + 1e-4 * sum(p.numel() for p in module.parameters())
    # ... and so is the calibration fitted on the profile's measured networks (its per-kind weights
    # reorder the candidates' costs when the machine is loaded): the identity instead
    source.table.calibration = Calibration()
    latencies = []
    for weight in (0.0, 1.0, 10.0):
        result, _ = _search(tiny, digits, latency=source, latency_weight=weight, alpha_lr=0.05, mode="soft", epochs=2)
        latencies.append(source.table.predict(result.derived, 10))
    assert latencies[0] >= latencies[1] >= latencies[2] and latencies[0] > latencies[2]


def test_expected_latency_is_the_weighted_table_latency(tiny, tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    source = _profile(path, tmp_path / "out")

    net = Supernet(tiny, 32, 1.0, 10)
    per_layer, constant = candidate_latencies(net, source, 10)
    picks = [len(u.options) - 1 for u in net.units]  # the deepest, last candidate everywhere
    one_hot = [torch.nn.functional.one_hot(torch.tensor(p), len(u.options)).float() for p, u in zip(picks, net.units)]
    arch = net.derive(picks)
    assert float(expected_latency(net, per_layer, constant, one_hot)) == pytest.approx(
        source.table.block_sum(arch, 10), rel=1e-6)


@pytest.mark.integration
def test_the_collapse_guard_stops_a_search_driven_onto_skips(digits, tmp_path):
    path = tmp_path / "skippy.yaml"
    path.write_text(SKIPPY)
    space = load_space(str(path))
    source = _profile(path, tmp_path / "out")
    # a latency weight this large makes skip (free) win everywhere: a collapse, built on purpose
    options = {"latency": source, "latency_weight": 50.0, "alpha_lr": 0.3, "mode": "soft", "epochs": 5}
    guarded, net = _search(space, digits, collapse_threshold=0.6, collapse_patience=2, **options)
    assert guarded.stopped and guarded.stopped.startswith("collapse guard")
    assert len(guarded.history) < 5 and guarded.history[-1]["identity_share"] >= 0.6
    # the weights kept are those from before the streak (here: the start, all candidates even)
    streak_start = len(guarded.history) - 2
    before = guarded.history[streak_start - 1]["probabilities"] if streak_start > 0 else None
    for unit, probs in zip(net.units, net.probabilities()):
        expected = before[unit.name] if before else [1 / len(probs)] * len(probs)
        assert probs.tolist() == pytest.approx(expected, abs=1e-4)
    unguarded, _ = _search(space, digits, collapse_threshold=1.0, collapse_patience=99, **options)
    assert unguarded.stopped is None and unguarded.history[-1]["identity_share"] > 0.9


@pytest.mark.integration
def test_darts_runs_as_a_strategy_and_leaves_its_history(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    result = search(space=str(path), strategy="darts", evaluator="proxy", budget=2, seed=0, out=str(tmp_path / "out"),
                    data={"name": "digits", "limit": 300}, evaluator_options={"epochs": 1}, epochs=3,
                    warmup_epochs=1)
    history = json.loads((result.run_dir / "darts.json").read_text())
    assert (result.run_dir / "alphas.png").stat().st_size > 0 and len(history["history"]) == 3
    assert result.trials["arch"].iloc[0] == history["derived"] and (result.trials["status"] == "ok").all()
    # resumed with more budget, it proposes from what it learned instead of searching again
    more = search(space=str(path), strategy="darts", budget=3, out=str(tmp_path / "out"), resume=True,
                  run_id=result.run_id, data={"name": "digits", "limit": 300}, evaluator_options={"epochs": 1},
                  epochs=3, warmup_epochs=1)
    assert len(more.trials) == 3 and json.loads((result.run_dir / "darts.json").read_text()) == history


@pytest.mark.parametrize(("argv", "fragment"), [
    (["strategy=darts", "latency_weight=1.0", "latency=none"], "latency_weight: DARTS needs a latency table"),
    (["strategy=darts", "mode=hard"], "unknown mode 'hard'"),
    (["strategy=darts", "order=2"], "second-order DARTS needs mode=soft"),
    (["strategy=darts", "space=resnet", "resolution=100"], "resolution/width must be the space's"),
])
def test_bad_darts_settings_are_one_line_errors(argv, fragment, capsys, tmp_path):
    assert main(["run", *argv, f"out={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err and not list(tmp_path.iterdir())


def test_darts_config_checks_its_fields():
    with pytest.raises(ConfigError, match="warmup_epochs"):
        DartsConfig(epochs=2, warmup_epochs=2)


@pytest.mark.integration
def test_darts_candidates_go_through_the_selection_stage(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    result = search(space=str(path), strategy="darts", evaluator="proxy", budget=9, seed=0, out=None,
                    data={"name": "digits", "limit": 300}, evaluator_options={"steps": 2}, epochs=2,
                    warmup_epochs=1, baselines="none", latency="none", progress=False)
    trials = result.trials
    assert len(trials) == 9 and (trials["stage"] == "select").any()
    assert result.best["n"] >= 2  # the winner is a mean over several trainings, not one draw
