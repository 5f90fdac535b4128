"""Data-parallel supernet training: DDP ranks (gloo on CPU) in step, rank 0's checkpoint, resume
across worker counts, and Ray Train's workers=N."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from evaluators.base import DEFAULT_DATA
from evaluators.supernet import SupernetTraining, load_checkpoint
from evaluators.supernet_config import SupernetConfig
from nas.cli.commands import main
from nas.oneshot.supernet import train_supernet
from tests.ports import free_port

pytestmark = pytest.mark.integration  # starts Ray clusters, kills processes or runs DDP ranks

DATA = {**DEFAULT_DATA, "limit": 300}
FAST = {"epochs": 2, "batch_size": 64, "sampling": "fair", "random_subnets": 2, "resolution": 16}


def _rank(rank: int, world: int, port: int, rdir: str, result: str) -> None:
    """One DDP rank: resume the training in ``rdir``, finish it, save what this rank ended with."""
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        training = SupernetTraining("nasbench_macro", DATA, rdir, SupernetConfig(**FAST), device="cpu", threads=1)
        resumed = training.resume()
        training.run()
        torch.save({"resumed": resumed, "epoch": training.epoch,
                    "params": {k: v.detach().clone() for k, v in training.supernet.named_parameters()}},
                   Path(result) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def cut(tmp_path_factory) -> Path:
    """A 2-epoch training stopped by a crash after its first epoch (one process)."""
    out = tmp_path_factory.mktemp("ddp")

    def stop(stats):
        if stats.epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_supernet("nasbench_macro", DATA, out, "cut", threads=1, on_epoch=stop, **FAST)
    return out / "supernets" / "cut"


def test_two_ranks_resume_a_one_process_training_and_stay_in_step(cut, tmp_path):
    before = load_checkpoint(cut)
    assert before["epoch"] == 1
    mp.spawn(_rank, args=(2, free_port(), str(cut), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    # Both ranks resumed from rank 0's checkpoint and finished epoch 2.
    assert all(r["resumed"] and r["epoch"] == 2 for r in ranks)
    # Every shared tensor is the same on both ranks after all steps: the gradients of every member
    # were averaged, those of slots only the no_sync members (the largest, a first random one) used
    # included.
    # Each rank trained on its own half of every batch, so unsynchronised slots would differ.
    for name, tensor in ranks[0]["params"].items():
        assert torch.equal(tensor, ranks[1]["params"][name]), name
    # Rank 0 alone checkpointed: epoch 2, its weights, the first epoch's history kept.
    after = load_checkpoint(cut)
    assert after["epoch"] == 2 and len(after["history"]) == 2
    assert after["history"][0] == before["history"][0]
    assert all(torch.equal(after["model"][name], t) for name, t in ranks[0]["params"].items())
    moved = [n for n, t in ranks[0]["params"].items() if not torch.equal(t, before["model"][n])]
    assert len(moved) > len(ranks[0]["params"]) // 2  # the second epoch trained
    assert sorted(p.name for p in cut.iterdir()) == ["history.csv", "supernet.pt"]  # nothing of rank 1


@pytest.mark.slow  # a Ray cluster start and a kill: minutes of CI; run with -m slow
def test_workers_on_ray_train_from_the_cli(tmp_path):
    """``nas supernet train workers=2``, in its own process as a user runs it: it starts a private
    Ray cluster, trains on two Ray Train workers and leaves the checkpoint and history."""
    pytest.importorskip("ray")
    argv = ["supernet", "train", "space=nasbench_macro", "data=digits", "data.limit=300", f"out={tmp_path}",
            "run_id=ray", "workers=2", "cpus_per_worker=1", "max_failures=0", "progress=false",
            *(f"{k}={v}" for k, v in {**FAST, "epochs": 1}.items())]
    done = subprocess.run([sys.executable, "-m", "nas.cli.commands", *argv], check=False, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    ckpt = tmp_path / "supernets" / "ray" / "supernet.pt"
    assert str(ckpt) in " ".join(done.stdout.split())
    state = load_checkpoint(ckpt)
    assert state["epoch"] == 1 and state["history"][0]["largest"] > 0
    assert len(pd.read_csv(ckpt.parent / "history.csv")) == 1


@pytest.mark.parametrize("arg, field", [("workers=0", "workers"), ("use_gpu=maybe", "use_gpu"),
                                        ("cpus_per_worker=0", "cpus_per_worker"), ("max_failures=-1", "max_failures")])
def test_bad_worker_settings_are_one_line(arg, field, tmp_path, capsys):
    code = main(["supernet", "train", "space=nasbench_macro", f"out={tmp_path}", arg])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith(f"error: {field}:"), err
    assert not (tmp_path / "supernets").exists()
