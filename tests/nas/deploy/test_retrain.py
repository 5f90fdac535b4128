"""nas retrain: Ray Train DDP on CPU workers (gloo), checkpoints, resume after a kill, model.pt, exports."""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import warnings

import pytest
import torch
import yaml

from evaluators.data import load_dataset
from evaluators.training import evaluate
from nas.cli.commands import main
from nas.deploy.retrain import RetrainRecipe, load_model, resolve_source, retrain
from nas.deploy.retrain_worker import train_set
from nas.run.files import read_table
from search_spaces.builder import build_model

pytestmark = pytest.mark.integration  # starts Ray clusters, kills processes or runs DDP ranks

ray = pytest.importorskip("ray")

ARCH = "tiny@32_relu_sd0.1:stem_k3_s2_c16:mb_k3_e1_c16:mb_k3_e3_c24_s2_se0.25:head_c64_d0.1"
# one epoch of small batches: enough steps for the test accuracy to leave chance (10%)
QUICK = {"epochs": 1, "batch": 16, "warmup_epochs": 0.1, "workers": 2, "cpus_per_worker": 1}
CLUSTER_CPUS = 4  # two workers, plus room while a killed driver's workers are reaped


@pytest.fixture(scope="module")
def cluster():
    """One private Ray cluster for the module (its start costs seconds); shut down afterwards."""
    ray.init(address="local", num_cpus=CLUSTER_CPUS, include_dashboard=False, log_to_driver=False,
             logging_level=logging.WARNING)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def trained(cluster, tmp_path_factory):
    out = tmp_path_factory.mktemp("retrain")
    return out, retrain(ARCH, QUICK, out=out, run_id="quick", export=["torchscript", "onnx", "torchscript_int8"])


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_two_gloo_workers_leave_a_checkpoint_a_leaderboard_row_and_a_model(trained, digits, capsys):
    out, result = trained
    assert (result.epochs, result.start_epoch, result.resolution) == (1, 0, 32)
    assert result.checkpoint.parent == out / "retrain" / "quick" and (result.checkpoint / "state.pt").is_file()
    assert result.test_accuracy > 20  # chance is 10%
    rows = read_table(out / "leaderboard.csv")
    assert len(rows) == 1
    row = rows.iloc[0]
    assert (row["stage"], row["run_id"], row["arch"], row["status"]) == ("retrain", "quick", ARCH, "ok")
    assert row["accuracy"] == pytest.approx(result.test_accuracy) and row["params"] == result.params
    assert main(["leaderboard", "--out", str(out)]) == 0 and "quick" in capsys.readouterr().out

    package = torch.load(result.model, weights_only=True)
    assert (package["arch"], package["num_classes"], package["resolution"]) == (ARCH, 10, 32)
    model = build_model(package["arch"], package["num_classes"])
    model.load_state_dict(package["state_dict"])
    trained_state = torch.load(result.checkpoint / "state.pt", weights_only=True)["model"]
    reference = build_model(ARCH, 10)
    reference.load_state_dict(trained_state)
    x, _ = digits.take("test", 32, torch.arange(8))
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), reference.eval()(x))
    accuracy, _ = evaluate(load_model(result.model), digits.batches("test", 32), torch.device("cpu"))
    assert accuracy == pytest.approx(result.test_accuracy, abs=100 / digits.size("test"))


def test_exports_match_pytorch(trained, digits):
    ort = pytest.importorskip("onnxruntime")
    _, result = trained
    model = load_model(result.model)
    x, _ = digits.take("test", 32, torch.arange(5))  # another batch size than the export's example
    with torch.no_grad():
        expected = model(x)
    session = ort.InferenceSession(result.exports["onnx"], providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"images": x.numpy()})
    torch.testing.assert_close(torch.from_numpy(logits), expected, atol=1e-4, rtol=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.load(result.exports["torchscript"])
        int8 = torch.jit.load(result.exports["torchscript_int8"])
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), expected, atol=1e-5, rtol=1e-5)
        assert int8(x).shape == expected.shape
    # the int8 model scored on the same test split; one epoch of training: a loose bound
    accuracy, _ = evaluate(int8, digits.batches("test", 32), torch.device("cpu"))
    assert accuracy == result.test_accuracy_int8 and abs(accuracy - result.test_accuracy) <= 10


def test_a_finished_retrain_resumes_as_it_is(trained):
    out, result = trained
    again = retrain(out=out, run_id="quick", resume=True)  # no training: result.yaml marks it done
    assert (again.test_accuracy, again.epochs, again.exports) == (result.test_accuracy, 1, result.exports)
    assert len(read_table(out / "leaderboard.csv")) == 1


def _checkpoints(snapshot) -> int:
    """Checkpoints Ray Train registered so far (0 while the snapshot is missing or being written)."""
    try:
        return len(json.loads(snapshot.read_text())["checkpoint_results"])
    except (OSError, ValueError, KeyError):
        return 0


@pytest.mark.slow  # a Ray cluster start and a kill: minutes of CI; run with -m slow
def test_a_killed_retrain_resumes_from_its_checkpoint(cluster, tmp_path, digits, capsys):
    rdir = tmp_path / "retrain" / "killed"
    # EMA and RandAugment here: their state and random draws must survive the restart too
    argv = ["retrain", ARCH, "epochs=3", "batch=16", "warmup_epochs=0.1", "workers=2", "cpus_per_worker=1",
            "ema=0.99", "augment=randaugment", f"out={tmp_path}", "run_id=killed", "progress=false"]
    log = (tmp_path / "driver.log").open("w")
    # its own session: the SIGKILL takes the driver's process group, as a crash or a lost node would
    proc = subprocess.Popen([sys.executable, "-m", "nas.cli.commands", *argv, f"ray.address={cluster}"],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while _checkpoints(rdir / "checkpoint_manager_snapshot.json") < 1:
            assert proc.poll() is None, (tmp_path / "driver.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "no checkpoint within 300 s"
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (rdir / "result.yaml").exists(), "finished before the kill: the test proves nothing"
    deadline = time.monotonic() + 60  # Ray reaps a dead driver's actors; wait for their CPUs
    while ray.available_resources().get("CPU", 0) < CLUSTER_CPUS and time.monotonic() < deadline:
        time.sleep(0.2)

    assert main(["retrain", "resume=true", "run_id=killed", f"out={tmp_path}", "progress=false"]) == 0
    assert "resumed after epoch" in capsys.readouterr().out
    summary = yaml.safe_load((rdir / "result.yaml").read_text())
    assert 1 <= summary["start_epoch"] < 3 and summary["epochs"] == 3
    assert [h["epoch"] for h in summary["history"]] == [1, 2, 3]
    rows = read_table(tmp_path / "leaderboard.csv")
    assert len(rows) == 1 and rows.iloc[0]["epochs"] == 3
    # model.pt holds the EMA weights that were scored
    accuracy, _ = evaluate(load_model(rdir / "model.pt"), digits.batches("test", 32), torch.device("cpu"))
    assert accuracy == pytest.approx(summary["test_accuracy"], abs=100 / digits.size("test"))


def test_augmentation_keeps_images_on_the_data_scale(digits):
    x, _ = digits.at("train", 32)
    augmented = train_set(digits, 32, "autoaugment")
    image, label = augmented[0]
    assert image.shape == x[0].shape and image.dtype == torch.float32 and label == digits.labels("train")[0]
    assert x.min() - 1e-4 <= image.min() and image.max() <= x.max() + 1e-4


# -- bad input: one line, exit 2, nothing written (no Ray needed) ------------------------------------
@pytest.mark.parametrize(
    "argv, fragment",
    [
        ([], "give exactly one of ARCH, run=ID, family=FILE phi=N"),
        (["efficientnet_b9"], "did you mean efficientnet_b7"),
        ([ARCH, "run=x"], "(got ARCH, run)"),
        ([ARCH, "augment=mixup"], "unknown augment 'mixup'; allowed: none, randaugment, autoaugment"),
        ([ARCH, "batch=10", "workers=3"], "batch: the global batch 10 must be divisible by workers=3"),
        ([ARCH, "ema=2"], "ema: must be a decay in (0, 1) or none"),
        ([ARCH, "amp=maybe"], "amp: must be auto, true or false"),
        ([ARCH, "epochs=0"], "epochs: must be an integer >= 1"),
        ([ARCH, "optimizer=sgdd"], "optimizer: 'sgdd' is not one of adamw, sgd"),
        ([ARCH, "export=[pdf]"], "unknown export 'pdf'; allowed: torchscript, onnx, torchscript_int8"),
        ([ARCH, "data=mnist"], "unknown data 'mnist'"),
        ([ARCH, "data.colour=1"], "unknown data option 'colour'"),
        ([ARCH, "bogus=1"], "unknown key 'bogus'"),
        ([ARCH, "run_id=a/b"], "run_id: use letters, digits"),
        (["run=nope"], "run nope: no "),
        (["family=f.yaml"], "family=FILE and phi=N go together"),
        (["resume=true", "run_id=nope"], "cannot resume retrain nope"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, fragment, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["retrain", *argv, f"out={out}"]) == 2
    err = capsys.readouterr().err
    assert fragment in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_resume_refuses_a_changed_recipe(trained, capsys):
    out, _ = trained
    assert main(["retrain", "resume=true", "run_id=quick", "epochs=3", f"out={out}"]) == 2
    assert "epochs: cannot change when resuming (saved 1, given 3)" in capsys.readouterr().err


def test_sources_run_best_and_family_member(tmp_path):
    best = tmp_path / "runs" / "r1" / "best.yaml"
    best.parent.mkdir(parents=True)
    best.write_text(yaml.safe_dump({"run_id": "r1", "best": {"trial": 3, "arch": ARCH, "accuracy": 90.0}}))
    assert (str(resolve_source(out=tmp_path, run="r1")[0]), resolve_source(out=tmp_path, run="r1")[1]) == (
        ARCH, "run=r1")
    family = tmp_path / "family.yaml"
    member = ARCH.replace("tiny@32", "tiny@40")
    family.write_text(yaml.safe_dump({"members": [{"phi": 0, "arch": ARCH}, {"phi": 1, "arch": member}]}))
    assert str(resolve_source(family=family, phi=1)[0]) == member
    with pytest.raises(Exception, match="unknown phi 2"):
        resolve_source(family=family, phi=2)
    assert resolve_source("resnet18")[1] == "resnet18"


def test_recipe_values_are_checked_one_field_at_a_time():
    assert RetrainRecipe(ema="none").ema is None
    with pytest.raises(Exception, match="channels_last: must be auto, true or false"):
        RetrainRecipe(channels_last="yes")
    with pytest.raises(Exception, match="label_smoothing: must be in"):
        RetrainRecipe(label_smoothing=1.0)
