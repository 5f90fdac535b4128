"""Int8: post-training static quantization of candidates, their int8 accuracy beside the float
one, int8 latency measured with its own fingerprint, and clear failures."""
from __future__ import annotations

import random

import pytest
import torch
from torch import nn

import evaluators.proxy
import nas
from evaluators.base import DEFAULT_DATA, EvaluationFailed
from evaluators.latency import LatencySettings, Measurer
from evaluators.proxy import ProxyEvaluator
from evaluators.quantize import qconfig_mapping, quantize_int8
from nas.cli.commands import main
from nas.profile import latency as nas_latency
from search_spaces import load_space
from search_spaces.builder import build_model
from search_spaces.errors import NasError
from tests.spaces import TINY

DATA = {**DEFAULT_DATA, "limit": 400}
SMALL = "resnet@224_relu:stem_k3_s2_c16:basic_k3_c16:basic_k3_c32_s2:head_pool"
MBCONV = "mbconv@224_silu:stem_k3_s2_c16:mb_k3_e1_c16_se0.25:mb_k5_e4_c24_s2:mb_k3_e4_c40_s2_se0.25:head_c256"


@pytest.mark.parametrize("arch", [SMALL, MBCONV])
def test_a_trained_network_keeps_its_accuracy_after_int8_quantization(arch):
    metrics = ProxyEvaluator(data=DATA, epochs=3, batch_size=32, quantize="int8")(arch)
    assert {"accuracy", "accuracy_int8", "loss_int8", "quantize_s"} <= set(metrics)
    # 80 validation images: within 5 points is at most 4 images changing their class
    assert metrics["accuracy"] > 50 and abs(metrics["accuracy_int8"] - metrics["accuracy"]) <= 5.0
    assert metrics["quantize_s"] > 0


def test_the_float_metrics_are_the_same_with_and_without_int8():
    plain = ProxyEvaluator(data=DATA, epochs=1, batch_size=32)(SMALL)
    both = ProxyEvaluator(data=DATA, epochs=1, batch_size=32, quantize="int8")(SMALL)
    assert {k: both[k] for k in ("accuracy", "loss", "train_loss")} == \
        {k: plain[k] for k in ("accuracy", "loss", "train_loss")}


# A small mbconv member quantizes in the quick loop (test_a_trained_network_keeps_its_accuracy...).
@pytest.mark.parametrize("name", ["resnet", *(pytest.param(n, marks=pytest.mark.integration)
                                             for n in ("mbconv", "fused_mbconv", "convnext", "shufflenet", "mixed"))])
def test_members_of_every_space_quantize_to_int8_kernels(name):
    arch = load_space(name).sample(random.Random(0))
    model = build_model(arch, 10).eval()
    x = torch.randn(2, 3, 32, 32)
    quantized = quantize_int8(model, [x])
    kinds = {type(m).__module__ for m in quantized.modules()}
    assert any(".quantized." in k for k in kinds), kinds  # int8 modules, not float ones with observers
    with torch.inference_mode():
        assert quantized(x).shape == (2, 10) and torch.isfinite(quantized(x)).all()


class _DataDependent(nn.Module):
    """Control flow on a tensor's value: FX cannot trace it, so it cannot be quantized this way."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return y if y.sum() > 0 else -y


def test_a_network_that_cannot_be_quantized_is_an_evaluation_failure_with_the_reason():
    with pytest.raises(EvaluationFailed, match=r"^quantize: TraceError") as caught:
        quantize_int8(_DataDependent(), [torch.randn(1, 3, 8, 8)])
    assert caught.value.reason == "quantize" and "\n" not in str(caught.value)


def test_int8_latency_runs_the_quantized_network_under_its_own_fingerprint():
    float32, int8 = LatencySettings(repeats=2, rounds=1, warmup=1), LatencySettings(dtype="int8", repeats=2,
                                                                                      rounds=1, warmup=1)
    assert float32.fingerprint() != int8.fingerprint() and "-int8-" in int8.fingerprint().slug
    model = build_model(SMALL, 10)
    (measured,) = Measurer(int8).measure_many([(model, (3, 64, 64))])
    assert measured.latency_ms > 0


@pytest.mark.filterwarnings("ignore:Please use quant_min and quant_max")  # torch's, on building an observer
def test_full_range_activations_use_all_eight_bits_and_change_only_the_int8_metrics():
    default, full = (qconfig_mapping(r).global_qconfig.activation() for r in (True, False))
    assert (default.quant_min, default.quant_max, full.quant_min, full.quant_max) == (0, 127, 0, 255)
    model = build_model(SMALL, 10).eval()
    x = torch.randn(4, 3, 32, 32)
    scales = [{n: float(b) for n, b in quantize_int8(model, [x], r).named_buffers() if n.endswith("_scale_0")}
              for r in (True, False)]
    # the same observed range over twice the levels: every activation step is half as wide
    assert scales[0].keys() == scales[1].keys() and scales[0]
    assert all(scales[1][n] == pytest.approx(scales[0][n] / 2, rel=0.02) for n in scales[0])
    seven, eight = (ProxyEvaluator(data=DATA, epochs=1, batch_size=32, quantize="int8", reduce_range=r)(SMALL)
                    for r in (True, False))
    assert {k: seven[k] for k in ("accuracy", "loss")} == {k: eight[k] for k in ("accuracy", "loss")}
    assert seven["loss_int8"] != eight["loss_int8"]


@pytest.mark.parametrize("settings, fragment", [
    ({"quantize": "int4"}, "quantize"),
    ({"quantize": "int8", "calibration_batches": 0}, "calibration_batches"),
    ({"quantize": "int8", "reduce_range": "no"}, "reduce_range: expected true or false"),
])
def test_bad_int8_settings_are_one_line_errors(settings, fragment):
    with pytest.raises(NasError, match=fragment) as caught:
        ProxyEvaluator(data=DATA, **settings)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("settings, fragment", [
    ({"dtype": "int8", "runtime": "onnxruntime"}, "dtype: onnxruntime profiles are float32"),
    ({"dtype": "int4"}, "dtype"),
])
def test_int8_latency_settings_it_cannot_measure_are_one_line_errors(settings, fragment):
    with pytest.raises(NasError, match=fragment) as caught:
        LatencySettings(**settings)
    assert "\n" not in str(caught.value)


# -- in a run ------------------------------------------------------------------------------------
FAST = {"warmup": 0, "repeats": 2, "rounds": 2}  # tests check behaviour, not precision


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return str(path)


def _int8_run(tiny, out, **extra):
    return nas.search(space=tiny, strategy="random", evaluator="proxy", seed=0, out=str(out), quantize="int8",
                      data=DATA, latency={"name": "measured", **FAST}, evaluator_options={"epochs": 1},
                      baselines="none", select="none", **extra)


@pytest.mark.integration
def test_an_int8_run_records_both_metrics_and_resumes_to_the_uninterrupted_trials(tiny, tmp_path):
    whole = _int8_run(tiny, tmp_path / "a", budget=3, run_id="r")
    rows = whole.trials
    assert list(rows["status"]) == ["ok"] * 3
    for column in ("accuracy", "accuracy_int8", "latency_ms", "latency_int8_ms", "quantize_s"):
        assert rows[column].notna().all() and (rows[column] > 0).all(), column
    assert whole.config["evaluator"]["quantize"] == "int8"
    _int8_run(tiny, tmp_path / "b", budget=2, run_id="r")
    resumed = _int8_run(tiny, tmp_path / "b", budget=3, run_id="r", resume=True)
    columns = ["arch", "accuracy", "accuracy_int8"]  # latencies are measurements: they differ per run
    assert resumed.trials[columns].equals(rows[columns])


@pytest.mark.integration
def test_an_int8_bound_and_objectives_apply_to_the_int8_metrics(tiny, tmp_path):
    result = _int8_run(tiny, tmp_path, budget=3, max_latency_ms=1e6, objectives=["accuracy_int8", "latency_int8_ms"])
    assert result.problem.constraints == {"latency_int8_ms": 1e6}
    assert [(o.metric, o.direction) for o in result.problem.objectives] == [("accuracy_int8", "max"),
                                                                          ("latency_int8_ms", "min")]
    assert result.trials["latency_int8_ms"].notna().all()


@pytest.mark.parametrize("kwargs, fragment", [
    ({"quantize": "int4"}, "unknown quantize 'int4'"),
    ({"quantize": "int8", "evaluator": "cost"}, "quantize: int8 scores the trained network"),
])
def test_bad_int8_run_settings_are_one_line_errors_and_write_nothing(tmp_path, kwargs, fragment):
    with pytest.raises(NasError, match=fragment) as caught:
        nas.search(**{"space": "mbconv", "budget": 2, "out": str(tmp_path), **kwargs})
    assert "\n" not in str(caught.value) and not any(tmp_path.iterdir())


@pytest.mark.integration
def test_the_run_summary_shows_the_int8_metrics_beside_the_float_ones(tiny, tmp_path, capsys):
    code = main(["run", f"space={tiny}", "strategy=random", "budget=2", "quantize=int8", "data.limit=400",
                 "evaluator.epochs=1", "latency=measured", "latency.repeats=2", "latency.rounds=2",
                 "latency.warmup=0", "baselines=none", "select=none", "progress=false", f"out={tmp_path}"])
    out = capsys.readouterr().out
    assert code == 0
    assert all(column in out for column in ("accuracy_int8", "latency_int8_ms", "latency_ms"))


@pytest.mark.integration
def test_a_candidate_that_cannot_be_quantized_is_a_failed_row_and_the_run_goes_on(tiny, tmp_path, monkeypatch):
    real = evaluators.proxy.quantize_int8
    calls = []

    def first_fails(model, calibration, reduce_range=True):
        calls.append(1)
        if len(calls) == 1:  # what quantize_int8 raises on a network FX cannot trace
            return real(_DataDependent(), [torch.randn(1, 3, 8, 8)])
        return real(model, calibration, reduce_range)

    monkeypatch.setattr(evaluators.proxy, "quantize_int8", first_fails)
    rows = _int8_run(tiny, tmp_path, budget=3).trials
    assert list(rows["status"]) == ["failed", "ok", "ok"]
    assert rows["error"].iloc[0].startswith("quantize: TraceError")
    assert rows["accuracy_int8"].iloc[1:].notna().all()


@pytest.mark.slow
@pytest.mark.integration
def test_an_int8_profile_fits_and_evaluates_like_a_float32_one(tiny, tmp_path):
    def session(dtype):
        return nas_latency.open_session({**nas_latency.LATENCY_DEFAULTS, **FAST, "space": tiny, "num_classes": 10,
                                         "out": str(tmp_path), "dtype": dtype})

    int8 = session("int8")
    assert "int8" in int8.store.path.name and int8.store.path != session("float32").store.path
    assert nas_latency.profile(int8, calibrate_n=6).parts > 0
    assert nas_latency.fit(int8, n=6).trained_on == 12
    report = nas_latency.evaluate(int8, n=4, passes=2, throughput_n=20)
    assert [a.predictor for a in report.accuracy] == ["table", "learned", "macs-linear"]
    assert all(a.rmse_ms >= 0 and 0 <= a.within_10 <= 100 for a in report.accuracy)
