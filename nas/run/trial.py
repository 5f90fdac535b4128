"""The values a run passes around: a job to evaluate, the trial it became, progress and names."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from evaluators.base import EvaluationFailed
from nas.strategies.base import Problem

STAGES = ("search", "select", "baseline")
# Row fields the runner owns; an evaluator returning one of them is a bug worth reporting.
RESERVED = frozenset(("trial", "arch", "repeat", "stage", "status", "wall_s", "timestamp", "error",
                      "run_id", "space", "strategy", "evaluator", "seed"))


@dataclass(frozen=True)
class Job:
    """One evaluation to run: an architecture, which repeat of it, and the stage asking for it."""

    arch: Any
    key: str
    repeat: int = 0
    stage: str = "search"  # search | select | baseline

    @property
    def id(self) -> str:
        """Unique among a run's jobs: the key, with the repeat when it is not the first."""
        return self.key if self.repeat == 0 else f"{self.key}#{self.repeat}"


@dataclass(frozen=True)
class Trial:
    """One evaluation as recorded: a row of ``trials.csv``."""

    trial: int
    arch: str
    status: str  # ok | failed | pruned
    metrics: Mapping[str, Any]
    wall_s: float
    timestamp: str
    error: str | None = None
    repeat: int = 0
    stage: str = "search"

    def row(self) -> dict[str, Any]:
        return {
            "trial": self.trial, "arch": self.arch, "repeat": self.repeat, "stage": self.stage,
            "status": self.status, **self.metrics,
            "wall_s": round(self.wall_s, 6), "timestamp": self.timestamp, "error": self.error,
        }

    def told(self) -> dict[str, Any]:
        """What the strategy is told: the metrics plus status (and error)."""
        told = {**self.metrics, "status": self.status}
        if self.error:
            told["error"] = self.error
        return told


@dataclass(frozen=True)
class Progress:
    """What a progress display gets after each trial."""

    trial: Trial
    done: int  # evaluations committed so far (baselines included)
    budget: int | None  # evaluations the run will make in all (baselines included), when known
    elapsed_s: float
    best: float | None  # best first-objective value so far (feasible ok trials)
    metric: str
    refused: int = 0  # proposals refused so far for breaking a constraint before evaluation
    nearest: str = ""  # the refused proposal closest to the bounds, e.g. "23.1 ms > 20 ms"


@dataclass(frozen=True)
class RunInfo:
    """Names written beside every leaderboard row."""

    run_id: str
    space: str
    strategy: str
    evaluator: str
    seed: int

    def leaderboard_row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """A trial's row of ``trials.csv`` as a row of the leaderboard."""
        return {"run_id": self.run_id, "space": self.space, "strategy": self.strategy,
                "evaluator": self.evaluator, "seed": self.seed, **row}


def normalise_metrics(raw: Any, problem: Problem) -> tuple[dict[str, Any], str, str | None]:
    """(metrics, status, error) from what an evaluator returned.

    A bare number is the first objective's value; a dict may carry ``status``/``error`` to report
    its own failure. Numpy scalars become Python numbers; nested values are an error.
    """
    if isinstance(raw, Mapping):
        items = dict(raw)
    elif isinstance(raw, (int, float)) and not isinstance(raw, bool):
        items = {problem.objectives[0].metric: raw}
    elif hasattr(raw, "item") and getattr(raw, "ndim", 1) == 0:
        items = {problem.objectives[0].metric: raw.item()}
    else:
        raise TypeError(f"evaluator returned {type(raw).__name__}; expected a dict of metrics")
    status = str(items.pop("status", "ok"))
    error = items.pop("error", None)
    metrics: dict[str, Any] = {}
    for key, value in items.items():
        key = str(key)
        if key in RESERVED:
            raise TypeError(f"evaluator returned {key!r}, a field the runner records itself")
        if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
            value = value.item()
        if value is None:
            continue
        if not isinstance(value, (int, float, str, bool)):
            raise TypeError(f"evaluator returned a {type(value).__name__} for {key!r}; expected a number")
        metrics[key] = value
    if status not in ("ok", "failed", "pruned"):
        raise TypeError(f"evaluator returned status {status!r}; expected ok, failed or pruned")
    if status == "ok":
        missing = [o.metric for o in problem.objectives if o.metric not in metrics]
        if missing:
            got = ", ".join(metrics) or "nothing"
            return metrics, "failed", (
                f"MissingMetric: evaluator returned no {missing[0]!r} (it returned {got}); "
                "choose objectives among the metrics it returns"
            )
    return metrics, status, None if error is None else str(error)


def error_text(exc: BaseException) -> str:
    """``diverged: ...`` / ``oom: ...`` / ``timeout: ...`` for failures an evaluator names,
    ``<type>: <message>`` for any other exception."""
    message = " ".join(str(exc).split()) or repr(exc)
    if isinstance(exc, EvaluationFailed):
        return message
    return f"{type(exc).__name__}: {message}"


def now() -> str:
    """The current UTC time as ISO 8601 with milliseconds (trial timestamps)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Baseline:
    """A hand-designed reference evaluated beside the search: its name, key and architecture."""

    name: str
    key: str
    arch: Any
    refused: str = ""  # why it is not evaluated (it breaks a constraint known before training)
