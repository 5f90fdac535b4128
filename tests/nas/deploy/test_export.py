"""Exports of a model.pt without Ray: the int8 TorchScript model loads, takes any batch size, keeps
the float model's accuracy and scores what it records; failures are one-line errors."""
from __future__ import annotations

import contextlib
import re
import time
import warnings

import pytest
import torch
import yaml
from torch import nn

from evaluators.base import EvaluationFailed
from evaluators.data import load_dataset
from evaluators.train_config import TrainConfig
from evaluators.training import evaluate, fit
from nas.cli.commands import main
from nas.deploy.export import export_model, export_network, load_model
from nas.deploy.retrain import _finish
from search_spaces.builder import build_model
from search_spaces.errors import NasError

ARCH = "tiny@32_relu:stem_k3_s2_c16:mb_k3_e1_c16:mb_k3_e3_c24_s2_se0.25:head_c64"
PIXELS = 16  # digits are 8x8: 16 px trains to well above chance in 100 steps, 4x cheaper than 32
CPU = torch.device("cpu")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: a network this small gains nothing from two, and two threads spinning on
    cores other processes share slow training down many times over."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def package(digits, tmp_path_factory):
    """A model.pt as retrain writes it (resolution=16, as retrain's resolution= setting writes),
    of a tiny network trained for 100 steps."""
    torch.manual_seed(0)
    model = build_model(ARCH, digits.num_classes)
    cfg = TrainConfig(steps=100, batch_size=32, lr=0.01, warmup_epochs=0.1, channels_last=False)
    fit(model, digits.loader("train", PIXELS, 32, seed=0), digits.batches("val", PIXELS), cfg, CPU)
    accuracy, _ = evaluate(model, digits.batches("test", PIXELS), CPU)
    path = tmp_path_factory.mktemp("export") / "model.pt"
    torch.save({"state_dict": {k: v.detach().contiguous() for k, v in model.state_dict().items()},
                "arch": ARCH, "num_classes": digits.num_classes, "resolution": PIXELS,
                "test_accuracy": accuracy, "val_accuracy": accuracy, "epochs": 1, "data": "digits"}, path)
    return path, accuracy


@pytest.fixture(scope="module")
def int8(package, digits):
    path, _ = package
    return export_model(path, ["torchscript_int8"], digits)


def _load(path: str) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript's deprecation notice
        return torch.jit.load(path)


def test_the_int8_file_loads_and_runs_a_batch_of_another_size(int8, package, digits):
    path, _ = package
    assert int8.files == {"torchscript_int8": str(path.parent / "model.int8.torchscript.pt")}
    scripted = _load(int8.files["torchscript_int8"])
    x, _ = digits.take("test", PIXELS, torch.arange(5))  # the trace's example was one image
    with torch.no_grad():
        logits = scripted(x)
        expected = load_model(path)(x)
    assert logits.shape == (5, 10) and torch.isfinite(logits).all()
    assert (logits.argmax(1) == expected.argmax(1)).float().mean() >= 0.8  # int8 rounds, it does not rewrite


def test_int8_test_accuracy_is_within_5_points_of_the_float_model(int8, package):
    _, float_accuracy = package
    # 360 test images: 5 points is 18 images changing their class
    assert float_accuracy > 60, float_accuracy
    assert abs(int8.test_accuracy_int8 - float_accuracy) <= 5.0, (int8.test_accuracy_int8, float_accuracy)


def test_the_recorded_int8_accuracy_is_the_saved_files(int8, digits):
    accuracy, _ = evaluate(_load(int8.files["torchscript_int8"]), digits.batches("test", PIXELS), CPU)
    assert accuracy == int8.test_accuracy_int8


def test_float_exports_score_nothing_and_no_export_writes_nothing(package, tmp_path):
    path, _ = package
    assert export_model(path, []).files == {}
    exported = export_network(load_model(path), PIXELS, ["torchscript"], tmp_path)
    assert exported.test_accuracy_int8 is None and list(tmp_path.iterdir()) == [tmp_path / "model.torchscript.pt"]


class _DataDependent(nn.Module):
    """Control flow on a tensor's value: FX cannot trace it, so it cannot be quantized."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 10, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x).mean((2, 3))
        return y if y.sum() > 0 else -y


@pytest.mark.parametrize("model, formats, data, fragment", [
    (_DataDependent(), ["torchscript_int8"], True, r"^export torchscript_int8: quantize: TraceError"),
    (None, ["torchscript_int8"], False, r"^export torchscript_int8: needs the data"),
    (None, ["onnx_int8"], True, r"^unknown export 'onnx_int8'.*allowed: torchscript, onnx, torchscript_int8$"),
])
def test_export_failures_are_one_line_errors_and_write_nothing(model, formats, data, fragment, digits, tmp_path):
    model = model or build_model(ARCH, 10).eval()
    with pytest.raises(NasError, match=fragment) as caught:
        export_network(model, PIXELS, formats, tmp_path, digits if data else None)
    assert "\n" not in str(caught.value) and not any(tmp_path.iterdir())


# -- recorded by retrain (its last step, _finish, given a checkpoint as Ray Train hands it back) ---
class _Checkpoint:
    """What ``_finish`` uses of a ``ray.train.Checkpoint``: its path and a folder holding state.pt."""

    def __init__(self, path) -> None:
        self.path = str(path)

    @contextlib.contextmanager
    def as_directory(self):
        yield self.path


def _finished(package, digits, folder, export):
    path, accuracy = package
    saved = torch.load(path, weights_only=True)
    (folder / "ckpt").mkdir(parents=True)
    torch.save({"model": saved["state_dict"], "ema": None, "train_s": 1.0,
                "history": [{"epoch": 1, "start_epoch": 0, "train_loss": 1.0, "val_accuracy": accuracy,
                             "test_accuracy": accuracy}]}, folder / "ckpt" / "state.pt")
    settings = {"arch": ARCH, "source": "arch", "resolution": PIXELS, "data": {"name": "digits"},
                "recipe": {"seed": 0}}
    rdir = folder / "retrain" / "r"
    rdir.mkdir(parents=True)
    return _finish(rdir, settings, _Checkpoint(folder / "ckpt"), export, time.perf_counter(), digits), rdir


def test_retrain_records_the_int8_accuracy_in_its_result_and_cli_table(package, digits, tmp_path, monkeypatch,
                                                                        capsys):
    result, rdir = _finished(package, digits, tmp_path, ["torchscript", "torchscript_int8"])
    summary = yaml.safe_load((rdir / "result.yaml").read_text())
    assert set(result.exports) == set(summary["exports"]) == {"torchscript", "torchscript_int8"}
    accuracy, _ = evaluate(_load(result.exports["torchscript_int8"]), digits.batches("test", PIXELS), CPU)
    assert result.test_accuracy_int8 == summary["test_accuracy_int8"] == accuracy
    monkeypatch.setattr("nas.deploy.retrain.retrain", lambda *args, **kwargs: result)
    assert main(["retrain", ARCH, f"out={tmp_path}"]) == 0
    assert re.search(rf"test top-1 int8 +│ {accuracy:.2f}%", capsys.readouterr().out)


def test_a_failed_int8_export_of_a_retrain_is_one_line_exit_2_and_leaves_the_run_finished(
        package, digits, tmp_path, monkeypatch, capsys):
    def fails(model, calibration):
        raise EvaluationFailed("quantize", "NotImplementedError: no int8 kernel")

    monkeypatch.setattr("nas.deploy.export.quantize_int8", fails)
    with pytest.raises(NasError, match=r"^export torchscript_int8: quantize: NotImplementedError") as caught:
        _finished(package, digits, tmp_path, ["torchscript_int8"])
    assert "\n" not in str(caught.value)
    summary = yaml.safe_load((tmp_path / "retrain" / "r" / "result.yaml").read_text())
    assert summary["exports"] == {} and "test_accuracy_int8" not in summary  # resume=true retries it

    def retrain(*args, **kwargs):
        raise caught.value

    monkeypatch.setattr("nas.deploy.retrain.retrain", retrain)
    assert main(["retrain", ARCH, "export=[torchscript_int8]", f"out={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "export torchscript_int8: quantize" in err and len(err.strip().splitlines()) == 1
