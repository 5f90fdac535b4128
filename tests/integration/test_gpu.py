"""GPU checks: the CUDA and bf16-autocast paths that the CPU suite cannot reach.

Each check trains or times something tiny on the device and asserts what a GPU run must show:
finite results, accuracy above chance where a short training reaches it, weights and
checkpoints on the device, and bf16 activations under autocast on CUDA. Covered: proxy
evaluation with amp, the project's autocast in the shared training loop, supernet training
with amp, its resume and scoring (``SupernetEvaluator``, ``extract_member``) on the device,
data-parallel supernet training (two DDP ranks sharing the device), DARTS with amp (first and
second order, with a latency table on the device), latency measurement with CUDA events and
the fingerprint naming the GPU, and, where Ray is installed, supernet training and
``nas retrain`` on a Ray Train GPU worker.

Run on a CUDA machine, from the repository root::
    bash benchmarks/gpu_check.sh

The device comes from ``NAS_TEST_DEVICE`` (``cuda`` by default; without a CUDA device the
module is skipped). ``NAS_TEST_DEVICE=cpu`` rehearses the same checks on the CPU, where amp is
a no-op by design::
    NAS_TEST_DEVICE=cpu python -m pytest tests/integration/test_gpu.py -m gpu -v
"""
from __future__ import annotations

import logging
import math
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from evaluators.base import DEFAULT_DATA
from evaluators.data import dataset_from_options, load_dataset
from evaluators.latency import LatencySettings, Measurer
from evaluators.latency.fingerprint import cpu_model
from evaluators.proxy import ProxyEvaluator
from evaluators.supernet import SupernetEvaluator, SupernetTraining, load_checkpoint
from evaluators.supernet_config import SupernetConfig
from evaluators.train_config import TrainConfig
from evaluators.training import autocast, fit
from nas.deploy.retrain import retrain
from nas.oneshot.supernet import extract_member, train_supernet
from nas.strategies.darts import DartsConfig
from nas.strategies.darts_training import darts_search
from search_spaces import load_space
from search_spaces.builder import build_model
from search_spaces.supernet import Supernet
from tests.ports import free_port
from tests.spaces import TINY

DEVICE = os.environ.get("NAS_TEST_DEVICE", "cuda")
if DEVICE not in ("cpu", "cuda"):  # the evaluators take these two names (no cuda:N)
    raise ValueError(f"NAS_TEST_DEVICE must be cpu or cuda, got {DEVICE!r}")
CUDA = DEVICE == "cuda"

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(CUDA and not torch.cuda.is_available(),
                       reason="no CUDA device; NAS_TEST_DEVICE=cpu runs these checks on the CPU"),
]

# bf16 where autocast is on (CUDA only, by design of evaluators.training.autocast)
AMP_DTYPE = torch.bfloat16 if CUDA else torch.float32
SMALL = "resnet@224_relu:stem_k3_s2_c16:basic_k3_c16:basic_k3_c32_s2:head_pool"
DATA = {**DEFAULT_DATA, "limit": 300}
# tests/nas/oneshot/test_supernet.py's fast setting: nasbench_macro's per-layer ops, 16 px, 2 epochs
SUPERNET = {"epochs": 2, "batch_size": 64, "sampling": "sandwich", "random_subnets": 1, "resolution": 16}
# tests/nas/oneshot/test_supernet_ddp.py's: several members per step, so no_sync and the last member's
# all-reduce both run
DDP = {"epochs": 1, "batch_size": 64, "sampling": "fair", "random_subnets": 2, "resolution": 16}


def _saved_device(path: Path, key: str) -> str:
    """The device the tensors under ``key`` of a torch file were on when saved (no map_location:
    each tensor comes back where it was)."""
    state = torch.load(path, weights_only=True)
    return next(iter(state[key].values())).device.type


class _Dtypes:
    """Records (dtype, device type) of a module's outputs in passes that build a graph, i.e.
    training steps, not BN recalibration or evaluation under no_grad."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.seen: set[tuple[torch.dtype, str]] = set()
        self.handle = module.register_forward_hook(self._hook)

    def _hook(self, _module: torch.nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        if torch.is_grad_enabled():
            self.seen.add((output.dtype, output.device.type))


# -- a. proxy evaluation, and the autocast its training loop runs under ------------------------------
def test_proxy_trains_on_the_device_with_amp():
    proxy = ProxyEvaluator(data={"name": "digits", "limit": 400}, epochs=3, batch_size=32, device=DEVICE, amp=True)
    assert proxy.device.type == DEVICE and proxy.train.amp
    metrics = proxy(SMALL)
    assert math.isfinite(metrics["loss"]) and math.isfinite(metrics["train_loss"])
    assert metrics["epochs"] == 3 and metrics["steps"] > 0 and metrics["train_s"] > 0
    assert 20 < metrics["accuracy"] <= 100  # chance is 10%


def test_bf16_autocast_is_active_in_training_on_cuda_only():
    dev = torch.device(DEVICE)
    torch.manual_seed(0)
    model = build_model(SMALL, 10).to(dev)
    x = torch.randn(4, 3, 32, 32, device=dev)
    with autocast(dev, True):
        assert model(x).dtype == AMP_DTYPE
    with autocast(dev, False):
        assert model(x).dtype == torch.float32
    # The loop the proxy and retrain share: every training step's logits in bf16 on the device.
    data = dataset_from_options(DATA)
    recorder = _Dtypes(model)
    result = fit(model, data.loader("train", 24, 32, 0, pin_memory=CUDA), data.batches("val", 24, pin_memory=CUDA),
                 TrainConfig(epochs=1, steps=3, batch_size=32, amp=True, bn_recalibration=2), dev)
    assert recorder.seen == {(AMP_DTYPE, DEVICE)}
    assert result.steps == 3 and math.isfinite(result.loss) and math.isfinite(result.train_loss)
    assert all(p.device.type == DEVICE for p in model.parameters())


# -- b. supernet: training with amp, resume and scoring on the device ----------------------------------
@pytest.fixture(scope="module")
def supernet(tmp_path_factory) -> Path:
    """A 2-epoch supernet training with amp, cut after epoch 1 and resumed on the same device."""
    out = tmp_path_factory.mktemp("supernet")

    def stop_after_first(stats: Any) -> None:
        if stats.epoch == 1:
            raise KeyboardInterrupt  # as a crash would: the checkpoint of epoch 1 stays

    with pytest.raises(KeyboardInterrupt):
        train_supernet("nasbench_macro", DATA, out, "gpu", device=DEVICE, amp=True, on_epoch=stop_after_first,
                       **SUPERNET)
    cut = load_checkpoint(out / "supernets" / "gpu")
    assert cut["epoch"] == 1
    ckpt = train_supernet(out=out, run_id="gpu", resume=True, device=DEVICE, amp=True)
    resumed = load_checkpoint(ckpt)
    assert resumed["epoch"] == 2 and resumed["history"][0] == cut["history"][0]
    # weights, not BN statistics (those change with any forward pass in training mode)
    weights = [k for k, t in resumed["model"].items() if not k.startswith("stats.")]
    moved = [k for k in weights if not torch.equal(resumed["model"][k], cut["model"][k])]
    assert len(moved) > len(weights) // 4  # the resumed epoch trained
    return ckpt


def test_supernet_trains_and_resumes_on_the_device(supernet):
    state = load_checkpoint(supernet)
    assert [h["epoch"] for h in state["history"]] == [1, 2]
    for h in state["history"]:
        assert math.isfinite(h["loss"]) and 0 <= h["smallest"] <= 100 and 0 <= h["largest"] <= 100
    assert _saved_device(supernet, "model") == DEVICE  # trained there, not silently on the CPU
    # the optimiser's moments came back onto the device on resume and were saved from there
    moments = torch.load(supernet, weights_only=True)["optimizer"]["state"]
    assert {t.device.type for s in moments.values() for k, t in s.items() if k != "step"} == {DEVICE}


def test_supernet_scores_and_extracts_members_on_the_device(supernet, tmp_path):
    evaluator = SupernetEvaluator(str(supernet), device=DEVICE)
    assert evaluator.device.type == DEVICE
    assert all(p.device.type == DEVICE for p in evaluator.supernet.parameters())
    space = evaluator.supernet.space
    member = space.sample(random.Random(1))
    for arch in (load_checkpoint(supernet)["largest"], member):
        metrics = evaluator(arch)
        assert 0 <= metrics["accuracy"] <= 100 and math.isfinite(metrics["loss"]) and metrics["eval_s"] > 0
    path, accuracy = extract_member(space.to_string(member), supernet, tmp_path / "member.pt", device=DEVICE)
    assert path.is_file() and 0 <= accuracy <= 100
    # The extracted member scores as the evaluator scored it (same recalibration batches); two
    # images of slack, as the two paths run other kernels (NHWC or not) on near-tied logits.
    assert accuracy == pytest.approx(metrics["accuracy"], abs=2 * 100 / evaluator.data.size("val") + 1e-9)


# -- c. data parallel: two DDP ranks on the one device --------------------------------------------------
def _rank(rank: int, world: int, port: int, rdir: str, result: str, device: str) -> None:
    """One DDP rank of a supernet training with amp on ``device``; saves what it ended with."""
    # gloo, not NCCL: NCCL refuses two ranks on one GPU, while gloo all-reduces CUDA tensors too,
    # so one GPU still runs DDP's reducer, no_sync and the collectives on CUDA gradients.
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        training = SupernetTraining("nasbench_macro", DATA, rdir, SupernetConfig(**DDP), device=device, amp=True,
                                    threads=1)
        recorder = _Dtypes(training.supernet)
        resumed = training.resume()  # nothing to resume: rank 0's None is broadcast
        training.run()
        torch.save({"resumed": resumed, "epoch": training.epoch, "world": training.world,
                    "ddp": isinstance(training.model, DistributedDataParallel),
                    "seen": sorted((str(d), t) for d, t in recorder.seen),
                    "params": {k: v.detach().cpu() for k, v in training.supernet.named_parameters()}},
                   Path(result) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_ranks_train_the_supernet_data_parallel_on_the_device(tmp_path):
    rdir, result = tmp_path / "run", tmp_path / "ranks"
    result.mkdir()
    mp.spawn(_rank, args=(2, free_port(), str(rdir), str(result), DEVICE), nprocs=2, join=True)
    ranks = [torch.load(result / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for r in ranks:
        assert (r["resumed"], r["epoch"], r["world"], r["ddp"]) == (False, 1, 2, True)
        assert r["seen"] == [(str(AMP_DTYPE), DEVICE)]
    # Each rank trained on its half of every batch: only averaged gradients keep them equal.
    for name, tensor in ranks[0]["params"].items():
        assert torch.equal(tensor, ranks[1]["params"][name]), name
    state = load_checkpoint(rdir)
    assert state["epoch"] == 1 and math.isfinite(state["history"][0]["loss"])
    assert _saved_device(rdir / "supernet.pt", "model") == DEVICE
    assert all(torch.equal(state["model"][k], t) for k, t in ranks[0]["params"].items())


# -- d. DARTS with amp ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("mode", "order"), [("gumbel", 1), ("soft", 2)])
def test_darts_searches_on_the_device_with_amp(mode, order, tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    space = load_space(str(path))
    torch.manual_seed(0)
    net = Supernet(space, 32, 1.0, 10)
    # A made-up latency table (ms per candidate): the expected-latency term then runs on the
    # device too; its values do not matter here.
    table = ([torch.linspace(0.1, 1.0, len(layer.layouts)) for layer in net.layers], 0.5)
    recorder = _Dtypes(net)
    cfg = DartsConfig(epochs=1, warmup_epochs=0, batch_size=32, train_resolution=16, mode=mode, order=order,
                      latency_weight=0.5, amp=True, seed=0)
    result = darts_search(net, load_dataset("digits", limit=300), cfg, torch.device(DEVICE), table)
    assert space.validate(result.derived) is not None and result.stopped is None
    assert len(result.history) == cfg.epochs
    for entry in result.history:
        assert math.isfinite(entry["train_loss"]) and math.isfinite(entry["expected_latency_ms"])
    assert all(a.device.type == DEVICE and torch.isfinite(a).all() for a in net.alphas)
    assert any(a.abs().sum() > 0 for a in net.alphas)  # the architecture weights moved
    # Bf16 in the autocast steps; second order also runs its unrolled step in float32 (no autocast).
    expected = {(AMP_DTYPE, DEVICE)} if order == 1 else {(AMP_DTYPE, DEVICE), (torch.float32, DEVICE)}
    assert recorder.seen == expected


# -- e. latency on the device ------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_latency_is_measured_on_the_device(dtype):
    measurer = Measurer(LatencySettings(device=DEVICE, dtype=dtype, warmup=2, repeats=6, rounds=2))
    timing = measurer.network(SMALL, num_classes=10)
    assert timing.repeats == 6 and 0 < timing.p25_ms <= timing.median_ms <= timing.p75_ms
    fingerprint = measurer.fingerprint
    assert (fingerprint.device, fingerprint.dtype) == (DEVICE, dtype)
    if CUDA:  # CUDA events time the GPU; the profile is named after it, threads play no part
        assert fingerprint.hardware == torch.cuda.get_device_name() and fingerprint.threads == 0
    else:
        assert fingerprint.hardware == cpu_model() and fingerprint.threads == 1
    assert fingerprint.slug.startswith(f"{DEVICE}-")


# -- c, f. Ray Train workers: one GPU each on cuda, one CPU worker on the rehearsal -----------------------
@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """One private Ray cluster for the module (its start costs seconds); shut down afterwards."""
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # a private cluster reports nothing
    ray.init(address="local", num_cpus=4, num_gpus=torch.cuda.device_count() if CUDA else 0,
             include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def test_supernet_trains_on_a_ray_train_gpu_worker(cluster, tmp_path):
    # workers=1 goes through Ray only with a ray_address; use_gpu=True then asks Ray for a GPU
    # and Ray Train's process group is NCCL's (gloo on the CPU rehearsal).
    ckpt = train_supernet("nasbench_macro", DATA, tmp_path, "ray", amp=True, workers=1, use_gpu=CUDA,
                          cpus_per_worker=1, max_failures=0, ray_address=cluster, **{**SUPERNET, "epochs": 1})
    state = load_checkpoint(ckpt)
    assert state["epoch"] == 1 and math.isfinite(state["history"][0]["loss"])
    assert _saved_device(ckpt, "model") == DEVICE


def test_retrain_runs_on_a_ray_train_gpu_worker(cluster, tmp_path):
    arch = "tiny@32_relu_sd0.1:stem_k3_s2_c16:mb_k3_e1_c16:mb_k3_e3_c24_s2_se0.25:head_c64_d0.1"
    # amp and channels_last stay auto: on with CUDA, as a user gets them
    recipe = {"epochs": 1, "batch": 16, "warmup_epochs": 0.1, "workers": 1, "cpus_per_worker": 1,
              "use_gpu": CUDA, "max_failures": 0}
    result = retrain(arch, recipe, out=tmp_path, run_id="gpu", ray_address=cluster)
    assert result.epochs == 1 and result.test_accuracy > 20  # chance is 10%
    assert result.model.is_file() and _saved_device(result.checkpoint / "state.pt", "model") == DEVICE
