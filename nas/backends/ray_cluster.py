"""Joining a Ray cluster, or starting a private one, and sizing Ray Train workers on it: shared by
backend=ray, nas retrain and nas supernet train."""
from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from search_spaces.errors import ConfigError, NasError

log = logging.getLogger(__name__)


def connect(address: str | None, num_cpus: int | None = None, log_to_driver: bool = True) -> bool:
    """Join the cluster at ``address`` (``auto``, ``host:port``, ``ray://...``) or RAY_ADDRESS, else
    start a private local one; True when this call started Ray (the caller shuts it down)."""
    import ray

    if ray.is_initialized():
        return False
    if address in (None, "", "auto") and os.environ.get("RAY_ADDRESS"):
        address = os.environ["RAY_ADDRESS"]  # a Ray job's own cluster (ray job submit sets it)
    address = address or None
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": log_to_driver,
                              "include_dashboard": False}
    if address is None:
        # "local": a new private cluster, never another process's (`ray start`) one; no dashboard,
        # so nothing listens for HTTP.
        address = "local"
        kwargs["num_cpus"] = num_cpus
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # a private cluster reports nothing
        # Ray turns token authentication on by itself and says so at every start: keep the
        # protection, drop the notice.
        logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    try:
        ray.init(address=address, **kwargs)
    except ConnectionError as exc:
        raise ConfigError(f"ray.address: no Ray cluster at {address!r} ({exc}); start one with "
                          "`ray start --head` or leave ray.address unset for a local cluster") from None
    log.info("ray: %s, resources %s", "started a local cluster" if address == "local" else f"joined {address}",
             ray.cluster_resources())
    return address == "local"


def train_scaling(workers: int, use_gpu: bool | str, cpus_per_worker: int | None) -> Any:
    """Ray Train's ScalingConfig for ``workers`` on the cluster Ray is connected to: one GPU each
    when ``use_gpu`` (``auto``: when the cluster has GPUs), else the cluster's CPUs shared out."""
    import ray
    from ray.train import ScalingConfig

    gpus = ray.cluster_resources().get("GPU", 0)
    gpu = gpus > 0 if use_gpu == "auto" else bool(use_gpu)
    if gpu and gpus < workers:
        raise ConfigError(f"use_gpu: {workers} worker(s) need a GPU each; the Ray cluster has {gpus:g}")
    if cpus_per_worker is None:  # torch uses as many threads (OMP_NUM_THREADS)
        cpus_per_worker = max(1, int(ray.cluster_resources().get("CPU", 1)) // workers)
    return ScalingConfig(num_workers=workers, use_gpu=gpu, resources_per_worker={"CPU": cpus_per_worker})


def fit_on_workers(loop: Callable[[dict[str, Any]], None], config: dict[str, Any], scaling: Any, *, name: str,
                   storage: Path, max_failures: int, keep: int | None, what: str, resume: str) -> Any:
    """Run ``loop(config)`` on Ray Train's workers (a TorchTrainer: one DDP rank each) and return its
    result. A worker group that still fails after ``max_failures`` restarts is one NasError: ``what``
    failed, the first worker's error, and the ``resume`` command that continues from the last
    checkpoint. ``keep``: checkpoints kept (None: all)."""
    import ray.train
    from ray.train.torch import TorchTrainer

    trainer = TorchTrainer(
        loop, train_loop_config=config, scaling_config=scaling,
        run_config=ray.train.RunConfig(
            name=name, storage_path=str(storage),
            failure_config=ray.train.FailureConfig(max_failures=max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=keep),
        ),
    )
    try:
        return trainer.fit()
    except ray.train.TrainingFailedError as exc:
        raise NasError(f"{what} failed: {first_error(exc)}; continue with: {resume}") from None


def first_error(exc: BaseException) -> str:
    """One line for the first worker's error of a failed Ray Train run (Ray wraps it with its traceback)."""
    failures = getattr(exc, "worker_failures", None) or {}
    cause = next(iter(failures.values()), None) or exc
    cause = getattr(cause, "cause", None) or cause
    lines = [line for line in str(cause).splitlines() if line.strip()]
    return f"{type(cause).__name__}: {lines[-1] if lines else ''}"[:300]
