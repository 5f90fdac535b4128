"""Proxy training: real numbers, reproducible per architecture, clear failures and errors."""
from __future__ import annotations

import math

import pytest
import torch

import evaluators.proxy as proxy_module
import nas
from evaluators.base import DEFAULT_DATA, EvaluationFailed, TrialPruned
from evaluators.devices import resolve_device
from evaluators.proxy import ProxyEvaluator
from evaluators.registry import make_evaluator
from evaluators.train_config import TrainConfig
from evaluators.training import make_scheduler
from nas.strategies import make_strategy
from search_spaces.cost import cost
from search_spaces.errors import ConfigError, NasError
from search_spaces.registry import load_space
from search_spaces.space import CategoricalSpace

SMALL = "resnet@224_relu:stem_k3_s2_c16:basic_k3_c16:basic_k3_c32_s2:head_pool"
OTHER = "resnet@224_relu:stem_k3_s2_c16:basic_k3_c24:basic_k3_c32_s2:head_pool"
DATA = {**DEFAULT_DATA, "limit": 400}


@pytest.fixture(scope="module")
def proxy() -> ProxyEvaluator:
    return ProxyEvaluator(data=DATA, epochs=2, batch_size=32)


def test_metrics_are_real_training_results(proxy):
    seen = []
    metrics = proxy(SMALL, report=lambda epoch, m: seen.append((epoch, m["accuracy"])))
    assert [e for e, _ in seen] == [1, 2] and seen[-1][1] == metrics["accuracy"]
    # 80 validation images: accuracy is a multiple of 1/80, well above chance after 2 epochs.
    assert 20 < metrics["accuracy"] <= 100 and (metrics["accuracy"] * 80 / 100) % 1 < 1e-9
    expected = cost(SMALL, 10)
    assert (metrics["params"], metrics["macs"]) == (expected.params, expected.macs)
    assert metrics["epochs"] == 2 and metrics["train_s"] > 0 and math.isfinite(metrics["loss"])


def test_a_score_depends_on_the_architecture_not_on_the_order(proxy):
    first = [proxy(SMALL)["accuracy"], proxy(OTHER)["accuracy"]]
    second = [proxy(OTHER)["accuracy"], proxy(SMALL)["accuracy"]]
    assert first == second[::-1]
    other_seed = ProxyEvaluator(data=DATA, epochs=2, batch_size=32, seed=1)
    assert other_seed(SMALL)["loss"] != proxy(SMALL)["loss"]


def test_evaluation_leaves_the_callers_rng_and_threads_alone(proxy):
    torch.manual_seed(123)
    expected = torch.rand(3)
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    ProxyEvaluator(data=DATA, epochs=1, threads=1)(SMALL)
    assert torch.equal(torch.rand(3), expected) and torch.get_num_threads() == threads


def test_resolution_follows_the_space_base():
    space = load_space("mbconv")
    proxy = ProxyEvaluator(data=DATA, epochs=1)
    proxy.check_space(space)
    arch = space.from_string(
        "mbconv@256_silu_sd0.2:stem_k3_s2_c32:mb_k3_e1_c16_se0.25:mb_k3_e6_c24_s2_se0.25_r2:"
        "mb_k5_e6_c40_s2_se0.25_r2:mb_k3_e6_c80_s2_se0.25_r3:mb_k5_e6_c112_se0.25_r3:"
        "mb_k5_e6_c192_s2_se0.25_r4:mb_k3_e6_c320_se0.25:head_c1280_d0.2"
    )
    assert proxy.train_resolution(arch) == 27  # 256 / 224 * 24
    assert ProxyEvaluator(data=DATA, resolution=None).train_resolution(arch) == 256
    assert proxy.data.at("train", 27)[0].shape[-2:] == (27, 27)


def test_divergence_and_timeouts_are_failures_with_a_reason():
    with pytest.raises(EvaluationFailed, match="^diverged"):
        ProxyEvaluator(data=DATA, epochs=1, optimizer="sgd", lr=float("inf"))(SMALL)
    with pytest.raises(EvaluationFailed, match="^timeout"):
        ProxyEvaluator(data=DATA, epochs=50, timeout_s=0.05)(SMALL)


def test_a_reporter_can_prune(proxy):
    def prune(epoch, metrics):
        raise TrialPruned(f"pruned at epoch {epoch}")

    with pytest.raises(TrialPruned, match="epoch 1"):
        proxy(SMALL, report=prune)


@pytest.mark.parametrize(("options", "fragment"), [
    ({"epochs": 0}, "epochs: must be an integer >= 1"),
    ({"optimizer": "adam"}, "optimizer: 'adam' is not one of adamw, sgd"),
    ({"device": "tpu"}, "device: 'tpu' is not one of auto, cpu, cuda"),
    ({"resolution": 4}, "resolution: must be an integer >= 8"),
    ({"lr": -1}, "lr: must be a number >= 0"),
    ({"data": {"name": "digitz"}}, "unknown data 'digitz' (did you mean digits?)"),
    ({"data": {"name": "digits", "rot": "x"}}, "unknown data option 'rot' (did you mean root?)"),
    ({"data": {"name": "imagefolder"}}, "data.root: imagefolder needs data.root=DIR"),
    ({"data": {"name": "digits", "val_fraction": 0.95}}, "data.val_fraction: must be a number in (0, 0.9)"),
])
def test_bad_options_are_one_line_errors(options, fragment):
    data = options.pop("data", DATA)
    with pytest.raises(NasError) as error:
        make_evaluator("proxy", data=data, **options)
    assert fragment in str(error.value) and "\n" not in str(error.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_cuda_asked_for_without_cuda_is_the_same_one_line_error_everywhere():
    message = "device: cuda was asked for but torch sees no CUDA device"
    with pytest.raises(ConfigError, match=message):
        resolve_device("cuda")
    with pytest.raises(ConfigError, match=message):
        ProxyEvaluator(data=DATA, device="cuda")
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ConfigError, match=message):  # DARTS: when it would train, before it loads anything
        make_strategy("darts", load_space("mbconv"), device="cuda").ask()
    with pytest.raises(ConfigError, match="device: 'tpu' is not one of auto, cpu, cuda"):
        make_strategy("darts", load_space("mbconv"), device="tpu")


def test_a_space_of_dicts_is_refused():
    with pytest.raises(ConfigError, match="yields dict"):
        ProxyEvaluator(data=DATA).check_space(CategoricalSpace({"a": [1, 2]}))


def test_schedule_warms_up_then_decays_to_zero():
    params = [torch.nn.Parameter(torch.zeros(1))]
    optimizer = torch.optim.SGD(params, lr=1.0)
    scheduler = make_scheduler(optimizer, TrainConfig(epochs=2, lr=1.0, warmup_epochs=0.5), 10)
    lrs = []
    for _ in range(20):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == pytest.approx(0.01) and max(lrs) == pytest.approx(1.0)
    assert lrs.index(max(lrs)) == 5 and lrs[-1] < 0.02


@pytest.mark.integration
def test_a_proxy_search_runs_end_to_end(tmp_path):
    result = nas.search(space="resnet", strategy="random", evaluator="proxy", budget=2, seed=3,
                        out=tmp_path, data=DATA, evaluator_options={"epochs": 1}, baselines="none",
                        latency="none")  # timing 224-px ResNets is not what this tests
    assert list(result.trials["status"]) == ["ok", "ok"]
    assert result.trials["accuracy"].between(0, 100).all()
    assert result.trials["train_resolution"].tolist() == [24, 24]
    assert (result.run_dir / "progress.png").is_file() and (tmp_path / "leaderboard.csv").is_file()


def test_out_of_memory_is_a_failure_named_oom(monkeypatch):
    def exhausted(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(proxy_module, "fit", exhausted)
    with pytest.raises(EvaluationFailed, match="^oom: CUDA out of memory"):
        ProxyEvaluator(data=DATA, epochs=1)(SMALL)


def test_a_diverging_training_is_a_failed_row_and_the_run_completes(tmp_path):
    result = nas.search(space="resnet", strategy="random", evaluator="proxy", budget=2, seed=0, out=tmp_path,
                        data=DATA, evaluator_options={"epochs": 1, "optimizer": "sgd", "lr": float("inf")},
                        baselines="none")
    assert list(result.trials["status"]) == ["failed", "failed"]
    assert result.trials["error"].str.startswith("diverged: ").all() and result.best is None


def test_a_step_budget_replaces_epochs():
    # 400 digits -> 240 training images -> 7 batches of 32 per epoch.
    seen = []
    metrics = ProxyEvaluator(data=DATA, steps=10, batch_size=32)(SMALL, report=lambda e, m: seen.append(e))
    assert (metrics["steps"], metrics["epochs"], seen) == (10, 2, [1, 2])
    assert ProxyEvaluator(data=DATA, steps=5, batch_size=32)(SMALL)["epochs"] == 1
    assert ProxyEvaluator(data=DATA, epochs=2, batch_size=32)(SMALL)["steps"] == 14
