"""Early stopping of evaluations that report per epoch: Optuna's pruners, for any strategy.

Every evaluation becomes a trial of a small in-memory Optuna study that holds only learning
curves (the objective reported after each epoch); Optuna's ``MedianPruner`` or
``SuccessiveHalvingPruner`` (ASHA's asynchronous successive halving) decides after each report
whether the evaluation goes on. The finished curves are part of the run's checkpoint, so a resumed
run rebuilds the same study and prunes exactly as an uninterrupted one would.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from evaluators.base import TrialPruned
from nas.strategies.base import Objective
from search_spaces.errors import unknown

PRUNERS = ("none", "median", "asha")


class Pruning:
    """Decides after each reported epoch whether an evaluation is worth finishing."""

    def __init__(self, name: str, objective: Objective) -> None:
        if name not in PRUNERS:
            raise unknown("pruner", name, PRUNERS)
        import optuna  # heavy: only when a pruner is asked for

        self.optuna = optuna
        self.name = name
        self.objective = objective
        self.curves: list[dict[str, Any]] = []  # finished trials, for the checkpoint
        self.study = self._new_study()
        self._trial: Any = None

    def _new_study(self) -> Any:
        optuna = self.optuna
        if self.name == "median":
            # Stop a trial whose value at an epoch is below the median of earlier trials at that
            # epoch, once 5 trials have finished and from the second epoch on.
            pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
        else:
            # Rungs at epochs 1, 3, 9, ...: a trial goes on only while it is in the top third
            # of the trials that reached the same rung.
            pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
        direction = "maximize" if self.objective.direction == "max" else "minimize"
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        return optuna.create_study(direction=direction, pruner=pruner)

    @property
    def active(self) -> bool:
        return self.name != "none"

    def begin(self) -> None:
        if self.active:
            self._trial = self.study.ask()

    def report(self, step: int, metrics: Mapping[str, float]) -> None:
        """Record the objective after ``step``; TrialPruned when the pruner stops the trial."""
        if self._trial is None:
            return
        value = metrics.get(self.objective.metric)
        if not isinstance(value, (int, float)) or math.isnan(value):
            return
        self._trial.report(float(value), step)
        if self._trial.should_prune():
            raise TrialPruned(f"pruned by {self.name} after epoch {step} "
                              f"({self.objective.metric} {value:.6g})")

    def end(self, status: str, metrics: Mapping[str, Any]) -> None:
        """Close the trial: ok (with its final value), pruned or failed."""
        if self._trial is None:
            return
        trial, self._trial = self._trial, None
        states = self.optuna.trial.TrialState
        value = metrics.get(self.objective.metric)
        if status == "ok" and isinstance(value, (int, float)) and not math.isnan(value):
            self.study.tell(trial, float(value))
        else:
            self.study.tell(trial, state=states.PRUNED if status == "pruned" else states.FAIL)
        frozen = self.study.trials[-1]
        self.curves.append({
            "state": frozen.state.name,
            "value": frozen.value,
            "steps": {str(k): v for k, v in frozen.intermediate_values.items()},
            "attrs": dict(frozen.system_attrs),  # successive halving keeps its rungs here
        })

    def state_dict(self) -> list[dict[str, Any]]:
        return self.curves

    def load_state_dict(self, curves: list[dict[str, Any]]) -> None:
        """Rebuild the study from the checkpointed curves (what an uninterrupted run had)."""
        optuna = self.optuna
        self.curves = [dict(c) for c in curves]
        self.study = self._new_study()
        self._trial = None
        self.study.add_trials([
            optuna.trial.create_trial(
                state=optuna.trial.TrialState[c["state"]],
                value=c["value"] if c["state"] == "COMPLETE" else None,
                intermediate_values={int(k): v for k, v in c["steps"].items()},
                system_attrs=c["attrs"],
            )
            for c in self.curves
        ])
