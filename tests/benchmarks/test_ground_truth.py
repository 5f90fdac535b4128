"""The Fashion-MNIST ground truth's tooling (benchmarks/ground_truth.py): its networks are seeded and
spread over cost, every row is one ``nas retrain`` command, and an interrupted job resumes with one
row per training, none twice."""
from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from tests.paths import BENCHMARKS

sys.path.insert(0, str(BENCHMARKS))
import ground_truth as gt

from nas.cli.retrain import parse
from search_spaces.cost import cost


@pytest.fixture
def recipe() -> dict:
    recipe = gt.load_recipe()
    recipe["members"] = {**recipe["members"], "count": 6, "pool": 60}
    return recipe


def test_members_are_seeded_distinct_and_spread_over_macs(recipe):
    first, again = gt.members(recipe), gt.members(recipe)
    assert [str(a) for _, a in first] == [str(a) for _, a in again]  # the same networks every time
    macs = [cost(a, 10).macs for _, a in first]
    assert len({str(a) for _, a in first}) == 6 and macs == sorted(macs) and macs[-1] > 3 * macs[0]
    roles = [role for role, _, _ in gt.networks(recipe)]
    assert roles == ["member"] * 6 + ["baseline"] * len(recipe["baselines"])


def test_every_row_is_one_nas_retrain_command_the_cli_accepts(recipe, tmp_path):
    _, arch = gt.members(recipe)[0]
    argv = gt.command(recipe, arch, seed=1, epochs=15, out=tmp_path, run_id="x")
    assert argv[:3] == ["nas", "retrain", str(arch)] and "seed=1" in argv and "data=fashion_mnist" in argv
    assert f"resolution={gt.train_pixels(recipe, arch)}" in argv
    chosen, settings, _ = parse(argv[2:])  # nas retrain's own parser: every key is one it knows
    assert chosen == str(arch) and settings["data"]["limit"] == recipe["data"]["limit"] and settings["seed"] == 1


def test_an_interrupted_job_resumes_with_one_row_per_training(recipe, tmp_path, monkeypatch):
    table = tmp_path / "truth.csv"
    monkeypatch.setattr(gt, "TABLE", table)
    trained = []

    def fake_train(recipe, role, name, arch, seed, epochs, work):
        trained.append((name, seed))
        if len(trained) == 3:
            raise KeyboardInterrupt  # killed during the third training
        return {"role": role, "name": name, "arch": str(arch), "seed": seed, "epochs": epochs,
                "test_accuracy": 80.0 + len(trained), "val_accuracy": 80.0, "wall_s": 1.0, "train_s": 1.0,
                "train_pixels": 28, "params": 1, "macs": 1, "latency_ms": float("nan"),
                "recipe": gt.recipe_id(recipe), "command": "nas retrain"}

    monkeypatch.setattr(gt, "train_one", fake_train)
    jobs = [(role, name, arch, seed, 15) for seed in (0, 1) for role, name, arch in gt.networks(recipe)[:3]]
    with pytest.raises(KeyboardInterrupt):
        gt.train(recipe, jobs, tmp_path, None)
    assert len(gt.read_table()) == 2  # the two finished rows were written as they finished
    trained.clear()
    trained.extend([None, None, None])  # no more interruptions
    gt.train(recipe, jobs, tmp_path, None)
    rows = gt.read_table()
    assert len(rows) == 6 and not rows.duplicated(["arch", "seed", "epochs"]).any()
    gt.train(recipe, jobs, tmp_path, None)  # all done: nothing trained again
    assert len(gt.read_table()) == 6
    trained.clear()
    trained.extend([None, None, None])
    changed = {**recipe, "recipe": {**recipe["recipe"], "epochs": 20}}  # another recipe: its own rows
    gt.train(changed, jobs, tmp_path, None)
    assert len(gt.read_table()) == 12


def test_a_digest_of_only_digits_reads_back_as_the_same_text(tmp_path, monkeypatch):
    monkeypatch.setattr(gt, "TABLE", tmp_path / "truth.csv")
    gt.append_row({"role": "member", "name": "m", "arch": "a", "seed": 0, "epochs": 1, "recipe": "00701234"})
    assert list(gt.read_table()["recipe"]) == ["00701234"]


def test_two_at_a_time_train_each_once_with_one_thread_each(recipe, tmp_path, monkeypatch):
    monkeypatch.setattr(gt, "TABLE", tmp_path / "truth.csv")
    calls = []

    def fake_train(recipe, role, name, arch, seed, epochs, work, threads=None):
        calls.append((name, seed, threads))
        return {"role": role, "name": name, "arch": str(arch), "seed": seed, "epochs": epochs,
                "test_accuracy": 80.0, "recipe": gt.recipe_id(recipe), "command": "nas retrain"}

    monkeypatch.setattr(gt, "train_one", fake_train)
    jobs = [(role, name, arch, seed, 15) for seed in (0, 1) for role, name, arch in gt.networks(recipe)[:3]]
    gt.train(recipe, jobs, tmp_path, None, parallel=2)
    rows = gt.read_table()
    assert len(rows) == 6 and not rows.duplicated(["arch", "seed", "epochs"]).any()
    assert sorted(calls) == sorted((name, seed, 1) for _, name, _, seed, _ in jobs)
    gt.train(recipe, jobs, tmp_path, None, parallel=2)  # all done: nothing trained again
    assert len(calls) == 6


def test_one_thread_is_part_of_the_command():
    recipe = gt.load_recipe()
    _, arch = gt.members(recipe)[0]
    argv = gt.command(recipe, arch, seed=0, epochs=15, out="/tmp/x", run_id="x", threads=1)
    assert "cpus_per_worker=1" in argv
    assert parse(argv[2:])[1]["cpus_per_worker"] == 1


def test_the_noise_model_recovers_known_seed_noise_and_spread():
    rng = np.random.default_rng(0)
    own = rng.normal(83.0, 1.0, 400)  # the networks' own accuracies: std 1
    wide = pd.DataFrame({seed: own + rng.normal(0, 0.5, 400) for seed in (0, 1)})  # seed noise 0.5
    model = gt.noise_model(wide)
    assert model.noise == pytest.approx(0.5, rel=0.1) and model.true_std == pytest.approx(1.0, rel=0.1)
    assert model.reliability(1) == pytest.approx(0.8, abs=0.05)  # 1 / (1 + 0.25)
    assert model.reliability(2) > model.reliability(1)
    observed = wide.corr(method="kendall").iloc[0, 1]
    assert model.expected_tau() == pytest.approx(observed, abs=0.05)  # what two seeds' rankings show
    assert gt.noise_model(wide.iloc[:2]) is None  # too few networks to say
