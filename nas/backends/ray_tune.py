"""``backend=ray``: evaluations run as Ray Tune trials, on this machine or a Ray cluster.

The run's ask/tell strategy is wrapped as a Tune ``Searcher``: Tune asks it for a config when a
slot is free (``ConcurrencyLimiter`` caps the slots at ``ray.workers``), a trial evaluates one
architecture on a worker and reports each epoch, and when the trial ends the searcher tells the
strategy and commits the trial through the same ``Run`` methods the local backend uses, in the
driver process: the run directory, ``state.json`` and the leaderboard come out as with
``backend=local``. With one worker the trials are the local backend's, in the same order.

A worker that dies mid-trial (killed, out of memory, node lost) is retried by Tune
(``FailureConfig(max_failures)``); an evaluator that raises is a failed trial, not a retry.
``pruner=asha|median`` becomes Tune's ``ASHAScheduler`` / ``MedianStoppingRule`` over the
evaluator's per-epoch reports.
"""
from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.tune.result import AUTO_RESULT_KEYS
from ray.tune.schedulers import ASHAScheduler, MedianStoppingRule
from ray.tune.search import ConcurrencyLimiter, Searcher

from nas.backends.ray_cluster import connect
from nas.run.trial import error_text, now
from search_spaces.errors import ConfigError

log = logging.getLogger(__name__)

RAY_DEFAULTS: dict[str, Any] = {
    "address": None,  # None: RAY_ADDRESS, else a local cluster; "auto": the cluster on this node
    "workers": None,  # concurrent trials; None: as many as the cluster's CPUs (GPUs) allow
    "cpus_per_trial": 1,
    "gpus_per_trial": 0,
    "max_failures": 2,  # retries of a trial whose worker died
}
RESULT_KEY = "nas_result"  # the final report of a trial (JSON), absent when a scheduler stopped it


@dataclass(frozen=True)
class RaySettings:
    """The ``ray.*`` settings of a run, checked."""

    address: str | None = None
    workers: int | None = None
    cpus_per_trial: float = 1
    gpus_per_trial: float = 0
    max_failures: int = 2

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None) -> RaySettings:
        options = dict(options or {})
        unknown = sorted(set(options) - set(RAY_DEFAULTS))
        if unknown:
            raise ConfigError(f"ray.{unknown[0]}: unknown; allowed: "
                              + ", ".join(f"ray.{k}" for k in RAY_DEFAULTS))
        merged = {**RAY_DEFAULTS, **options}
        address = merged["address"]
        if address is not None and not isinstance(address, str):
            raise ConfigError(f"ray.address: expected auto, ray://HOST:PORT or HOST:PORT, got {address!r}")
        workers = merged["workers"]
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise ConfigError(f"ray.workers: must be an integer >= 1 or null (all the cluster allows), "
                              f"got {workers!r}")
        for name in ("cpus_per_trial", "gpus_per_trial"):
            value = merged[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or math.isinf(value):
                raise ConfigError(f"ray.{name}: must be a number >= 0, got {value!r}")
        if not merged["cpus_per_trial"] > 0:
            raise ConfigError(f"ray.cpus_per_trial: must be > 0, got {merged['cpus_per_trial']!r}")
        failures = merged["max_failures"]
        if isinstance(failures, bool) or not isinstance(failures, int) or failures < -1:
            raise ConfigError(f"ray.max_failures: must be an integer >= 0 (-1: retry forever), got {failures!r}")
        return cls(address=address or None, workers=workers, cpus_per_trial=merged["cpus_per_trial"],
                   gpus_per_trial=merged["gpus_per_trial"], max_failures=failures)


def _evaluate_trial(config: dict[str, Any], evaluator: Any = None, threads: int = 1,
                    listen: bool = False) -> None:
    """A Tune trial: evaluate one architecture, reporting each epoch, then the outcome."""
    import torch  # noqa: PLC0415 - in the trial's worker: the driver of a tabular run needs no torch

    torch.set_num_threads(threads)

    def report(step: int, metrics: dict[str, float]) -> None:
        tune.report({**{k: v for k, v in metrics.items() if _is_number(v)}, "nas_step": step})

    start, stamp = time.perf_counter(), now()
    try:
        # Without a scheduler nobody reads the epochs: a training evaluator then skips their
        # validation passes, as with backend=local.
        raw: Any = evaluator(config["arch"], report if listen else None, repeat=config.get("repeat", 0))
        outcome: dict[str, Any] = {"raw": _jsonable(raw)}
    except Exception as exc:  # noqa: BLE001 - the evaluator's failure is the trial's outcome
        outcome = {"raw": {"status": "failed", "error": error_text(exc)}}
    outcome.update(wall_s=time.perf_counter() - start, timestamp=stamp, node=os.uname().nodename)
    final = outcome["raw"] if isinstance(outcome["raw"], dict) else {}
    tune.report({**{k: v for k, v in final.items() if _is_number(v)}, RESULT_KEY: json.dumps(outcome)})


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _jsonable(raw: Any) -> Any:
    """What an evaluator returned, as JSON (numpy and torch scalars become numbers)."""
    if isinstance(raw, Mapping):
        return {str(k): _jsonable(v) for k, v in raw.items()}
    if hasattr(raw, "item") and getattr(raw, "ndim", 1) == 0:
        return raw.item()
    if raw is None or isinstance(raw, (str, int, float, bool)):
        return raw
    return repr(raw)


class RayBackend:
    """Runs each evaluation as a Ray Tune trial; the driver keeps the run's files."""

    name = "ray"

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self.settings = RaySettings.from_options(options)

    def workers(self) -> int:
        """Concurrent trials: ``ray.workers``, or as many as the cluster's resources fit."""
        if self.settings.workers is not None:
            return self.settings.workers
        resources = ray.cluster_resources()
        fits = [resources.get("CPU", 1) / self.settings.cpus_per_trial]
        if self.settings.gpus_per_trial > 0:
            fits.append(resources.get("GPU", 0) / self.settings.gpus_per_trial)
        return max(1, int(min(fits)))

    def drive(self, run: Any) -> None:
        """Run ``run`` (a ``nas.run.runner.Run``) to its budget with Tune."""
        # A final report of a failed trial carries no objective: not an error for the scheduler.
        os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        started = connect(self.settings.address)
        try:
            workers = self.workers()
            searcher = StrategySearcher(run, self.settings.max_failures)
            threads = max(1, int(self.settings.cpus_per_trial))
            scheduler = _scheduler(run)
            trainable = tune.with_resources(
                tune.with_parameters(_evaluate_trial, evaluator=run.evaluator, threads=threads,
                                     listen=scheduler is not None),
                {"cpu": self.settings.cpus_per_trial, "gpu": self.settings.gpus_per_trial},
            )
            scratch = None
            if run.dir is None:  # a run kept in memory: Tune's own files go to a temporary folder
                scratch = tempfile.TemporaryDirectory(prefix="nas-ray-")
            storage = Path(scratch.name if scratch else run.dir.path, "ray").resolve()
            tuner = tune.Tuner(
                trainable,
                tune_config=tune.TuneConfig(
                    search_alg=ConcurrencyLimiter(searcher, max_concurrent=workers),
                    scheduler=scheduler,
                    num_samples=-1,  # the searcher says when the run is done
                    reuse_actors=True,  # a process per trial costs seconds; a trial is one call
                    trial_name_creator=_trial_name,
                    trial_dirname_creator=_trial_name,
                ),
                run_config=tune.RunConfig(
                    name=f"tune-{run.completed}", storage_path=str(storage), verbose=0,
                    failure_config=tune.FailureConfig(max_failures=self.settings.max_failures),
                ),
            )
            log.info("ray: %d concurrent trials of %g CPU, %g GPU", workers,
                     self.settings.cpus_per_trial, self.settings.gpus_per_trial)
            try:
                tuner.fit()
            finally:
                if scratch is not None:
                    scratch.cleanup()
            if searcher.error is not None:
                raise searcher.error
        finally:
            if started:
                ray.shutdown()


def _trial_name(trial: Any) -> str:
    return f"trial_{trial.trial_id}"


def _scheduler(run: Any) -> Any:
    """Tune's counterpart of the run's pruner (None: let every trial finish)."""
    name = getattr(run.pruning, "name", "none") if run.pruning is not None else "none"
    if name == "none":
        return None
    objective = run.problem.objectives[0]
    if name == "asha":
        # Rungs at epochs 1, 3, 9, ... as the local pruner's successive halving.
        return ASHAScheduler(time_attr="training_iteration", metric=objective.metric,
                             mode=objective.direction, max_t=10_000, grace_period=1, reduction_factor=3)
    return MedianStoppingRule(time_attr="training_iteration", metric=objective.metric,
                              mode=objective.direction, grace_period=1, min_samples_required=5)


class StrategySearcher(Searcher):
    """A Tune ``Searcher`` over a run: suggestions are the run's proposals, results its commits."""

    def __init__(self, run: Any, retries: int = 0) -> None:
        super().__init__()
        self.run = run
        self.retries = retries
        self.live: dict[str, Any] = {}  # Tune trial id -> job
        self.error: BaseException | None = None  # a commit that failed (disk full...): re-raised

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its searcher for its own restore (tuner.pkl); the run, with its evaluator
        # and progress display, stays in the driver: resuming is the run's job (state.json).
        return {k: v for k, v in self.__dict__.items() if k not in ("run", "live", "error")}

    def save(self, checkpoint_path: str) -> None:
        """Tune's searcher checkpoint: a pointer, since the run's ``state.json`` holds the state."""
        state = self.run.dir.state if self.run.dir is not None else None
        Path(checkpoint_path).write_text(json.dumps({"run_state": str(state)}))

    def restore(self, checkpoint_path: str) -> None:
        """Nothing to restore: a run resumes from its ``state.json`` (``resume=true``)."""

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.error is not None:
            return self.FINISHED
        try:
            job = self.run.next_job()
        except BaseException as exc:  # noqa: BLE001 - Tune would swallow it; the driver re-raises
            self.error = exc
            return self.FINISHED
        if job is None:
            return self.FINISHED if self.run.finished and not self.live else None
        self.live[trial_id] = job
        return {"arch": job.arch, "repeat": job.repeat}

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        job = self.live.pop(trial_id, None)
        if job is None or self.error is not None:
            return
        try:
            self.run.finish(job, self._trial(job, result or {}, error))
        except BaseException as exc:  # noqa: BLE001 - stop suggesting; the driver re-raises
            self.error = exc

    def _trial(self, job: Any, result: Mapping[str, Any], error: bool) -> Any:
        outcome = result.get(RESULT_KEY)
        if outcome is not None:
            done = json.loads(outcome)
            return self.run.outcome(job, done["raw"], float(done["wall_s"]), str(done["timestamp"]))
        reported = {k: v for k, v in result.items() if k in self._reported_keys(result)}
        wall = float(result.get("time_total_s") or 0.0)
        if error:
            return self.run.failed_trial(
                job, f"WorkerFailed: the trial's Ray worker died {self.retries + 1} times "
                f"(ray.max_failures={self.retries} retries)", wall)
        return self.run.failed_trial(job, "stopped early by the scheduler", wall, reported, "pruned")

    @staticmethod
    def _reported_keys(result: Mapping[str, Any]) -> list[str]:
        """The evaluator's own per-epoch metrics in a Tune result (not Tune's bookkeeping)."""
        return [k for k, v in result.items()
                if k not in AUTO_RESULT_KEYS and k not in ("nas_step", "config") and _is_number(v)]
