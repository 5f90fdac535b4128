"""The run loop: ask -> dedupe -> evaluate -> record -> tell, checkpointed after every trial.

Resume protocol (what makes a resumed run the run that was interrupted):

1. a trial is *committed* when its row is appended to ``trials.csv`` and then ``state.json`` is
   replaced (atomically) with the strategy's ``state_dict()`` taken *after* ``tell`` and the
   runner's counters; ``state.json`` is the commit point, ``trials.csv`` may hold one row more;
2. on resume the strategy loads that state, ``trials.csv`` is cut back to the committed rows, and
   the loop asks again. A trial that was being evaluated when the process died was never
   committed, so the restored strategy simply proposes it again: no trial is lost or repeated,
   and with the sequential ``local`` backend and a strategy whose whole state is in
   ``state_dict()``, the trials are identical to an uninterrupted run with the same seed;
3. leaderboard rows are appended after the commit; a resume first adds any committed trial the
   leaderboard lacks (the process may have died between the two writes).
"""
from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from filelock import FileLock, Timeout

from evaluators.base import EvaluationFailed, TrialPruned
from evaluators.registry import as_evaluator
from nas.backends import make_backend
from nas.problem import best_row, best_so_far, pareto_rows, plain_rows
from nas.pruning import Pruning
from nas.store import (
    TRIAL_COLUMNS,
    TRIAL_TAIL,
    RunDir,
    append_leaderboard,
    append_rows,
    atomic_write_json,
    atomic_write_text,
    leaderboard_keys,
    read_rows,
    read_table,
    rewrite_rows,
)
from nas.strategies.base import Problem, Strategy
from search_spaces.errors import NasError
from search_spaces.space import SearchSpace

log = logging.getLogger(__name__)

STATE_VERSION = 1
# Row fields the runner owns; an evaluator returning one of them is a bug worth reporting.
RESERVED = frozenset(TRIAL_COLUMNS + TRIAL_TAIL + ("run_id", "space", "strategy", "evaluator", "seed"))
# Proposals in a row that bring nothing new (duplicates, known-infeasible) before the run stops.
MAX_IDLE_PROPOSALS = 1000


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

    def row(self) -> dict[str, Any]:
        return {
            "trial": self.trial, "arch": self.arch, "status": self.status, **self.metrics,
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
    done: int  # evaluations committed so far
    budget: int | None
    elapsed_s: float
    best: float | None  # best first-objective value so far (feasible ok trials)
    metric: str


@dataclass(frozen=True)
class RunInfo:
    """Names written beside every leaderboard row."""

    run_id: str
    space: str
    strategy: str
    evaluator: str
    seed: int


@dataclass
class _Counters:
    trials: int = 0
    elapsed_s: float = 0.0
    seen: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> what was told
    skipped: int = 0
    duplicates: int = 0


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


def _error_text(exc: BaseException) -> str:
    """``diverged: ...`` / ``oom: ...`` / ``timeout: ...`` for failures an evaluator names,
    ``<type>: <message>`` for any other exception."""
    message = " ".join(str(exc).split()) or repr(exc)
    if isinstance(exc, EvaluationFailed):
        return message
    return f"{type(exc).__name__}: {message}"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Run:
    """One search: a strategy proposing members of a space, scored by an evaluator, recorded.

    Stops after ``budget`` unique evaluations (failed and pruned ones count: they were spent),
    after ``budget_hours`` of wall time (checked between trials, summed across resumes), or when
    the strategy has nothing new to propose.
    """

    def __init__(
        self,
        space: SearchSpace,
        strategy: Strategy,
        evaluator: Callable[..., Any],
        problem: Problem | None = None,
        *,
        run_dir: str | Path,
        budget: int | None = None,
        budget_hours: float | None = None,
        seed: int = 0,
        backend: Any = "local",
        out: str | Path | None = None,
        info: RunInfo | None = None,
        on_trial: Callable[[Progress], None] | None = None,
        pruner: str = "none",
    ) -> None:
        if budget is None and budget_hours is None:
            raise NasError("a run needs a budget: budget=N evaluations and/or budget_hours=H")
        if budget is not None and budget < 1:
            raise NasError(f"budget: must be >= 1 evaluation, got {budget}")
        if budget_hours is not None and not budget_hours > 0:
            raise NasError(f"budget_hours: must be > 0, got {budget_hours}")
        self.space = space
        self.strategy = strategy
        self.evaluator = as_evaluator(evaluator)  # a plain callable arch -> dict works too
        self.problem = problem or strategy.problem
        self.dir = RunDir(Path(run_dir))
        self.budget = budget
        self.budget_s = None if budget_hours is None else budget_hours * 3600.0
        self.seed = seed
        self.backend = make_backend(backend) if isinstance(backend, str) else backend
        self.out = Path(out) if out is not None else self.dir.path.parent.parent
        self.info = info or RunInfo(
            run_id=self.dir.run_id,
            space=space.name,
            strategy=getattr(strategy, "name", type(strategy).__name__),
            evaluator=str(self.evaluator.name),
            seed=seed,
        )
        self.on_trial = on_trial
        self.pruning = Pruning(pruner, self.problem.objectives[0]) if pruner != "none" else None
        self.stopped_because = ""
        self._c = _Counters()
        self._best: float | None = None
        self._clock = 0.0
        # key -> arch handed out and not committed; saved, so a resumed run evaluates them first
        self._pending: dict[str, Any] = {}
        self._dispatched: set[str] = set()
        self._exhausted = False

    # -- public ------------------------------------------------------------------------------------
    def run(self, resume: bool = False) -> pd.DataFrame:
        """Run (or resume) to the budget; return the trials table (one row per evaluation)."""
        self.dir.path.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.dir.lock), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise NasError(f"run {self.info.run_id} is in use by another process ({self.dir.path})") from None
        try:
            if resume:
                self._restore()
            else:
                if self.dir.state.exists():
                    raise NasError(
                        f"run {self.info.run_id} already exists in {self.dir.path}: resume it "
                        "(resume=true) or choose another run_id"
                    )
                self._save_state()
            self._clock = time.monotonic()
            self._loop()
            self._c.elapsed_s = self._elapsed()
            self._save_state()
            trials = self.trials()
            self.write_summary(trials)
            return trials
        except OSError as exc:  # disk full, read-only, quota: what was committed is safe
            where = exc.filename or "its files"
            raise NasError(
                f"run {self.info.run_id} stopped: cannot write {where} ({exc.strerror or exc}); its "
                f"{self._c.trials} committed trials are safe: free space, then continue with "
                f"nas run resume=true run_id={self.info.run_id} out={self.out}"
            ) from None
        finally:
            lock.release()

    def trials(self) -> pd.DataFrame:
        """The committed trials, read back from ``trials.csv``."""
        if not self.dir.trials.is_file():
            return pd.DataFrame(columns=list(TRIAL_COLUMNS))
        return read_table(self.dir.trials)

    def write_summary(self, trials: pd.DataFrame) -> None:
        """``best.yaml`` and the plots (a plotting failure is logged, never fatal)."""
        import yaml

        summary: dict[str, Any] = {
            "run_id": self.info.run_id,
            "space": self.info.space,
            "strategy": self.info.strategy,
            "evaluator": self.info.evaluator,
            "seed": self.seed,
            "evaluations": len(trials),
            "objectives": [f"{o.metric}:{o.direction}" for o in self.problem.objectives],
            "constraints": dict(self.problem.constraints),
            "best": best_row(trials, self.problem),
        }
        if len(self.problem.objectives) > 1:
            summary["pareto"] = plain_rows(pareto_rows(trials, self.problem))
        atomic_write_text(self.dir.best, yaml.safe_dump(summary, sort_keys=False, width=10_000))
        try:
            from nas.plots import pareto_plot, progress_plot

            progress_plot(trials, self.problem, self.dir.progress_plot, title=self.info.run_id)
            if len(self.problem.objectives) > 1:
                pareto_plot(trials, self.problem, self.dir.pareto_plot, title=self.info.run_id)
        except Exception as exc:  # noqa: BLE001 - a plot is a convenience; results are safe already
            log.warning("could not draw the plots of run %s: %s", self.info.run_id, exc)

    # -- the loop ----------------------------------------------------------------------------------
    def _elapsed(self) -> float:
        return self._c.elapsed_s + (time.monotonic() - self._clock)

    def _budget_left(self, in_flight: int = 0) -> bool:
        if self.budget is not None and self._c.trials + in_flight >= self.budget:
            if in_flight:
                return False  # not final yet: the in-flight evaluations still commit
            self.stopped_because = f"budget of {self.budget} evaluations reached"
            return False
        if self.budget_s is not None and self._elapsed() >= self.budget_s:
            self.stopped_because = f"time budget of {self.budget_s / 3600:g} h reached"
            return False
        return True

    def _loop(self) -> None:
        self.backend.drive(self)

    # -- what backends drive: next proposal, one evaluation, its commit ---------------------------
    @property
    def completed(self) -> int:
        """Trials committed so far (across resumes)."""
        return self._c.trials

    @property
    def in_flight(self) -> int:
        """Proposals handed out for evaluation and not yet committed."""
        return len(self._pending)

    def next_arch(self) -> Any | None:
        """The next architecture to evaluate, or None (``stopped_because`` says why when final).

        Proposals left in flight by an interrupted run come first; duplicates and candidates known
        to be infeasible are answered here without an evaluation. Committed and in-flight trials
        together never exceed the budget.
        """
        for key, arch in self._pending.items():
            if key not in self._dispatched:
                self._dispatched.add(key)
                return arch
        idle = 0
        while self._budget_left(len(self._pending)):
            asked = self.strategy.ask(1)
            if not asked:
                if self._pending:
                    return None  # in-flight results may let the strategy propose again
                rejected = getattr(self.strategy, "rejected", 0)
                if rejected:
                    limits = ", ".join(f"{m} <= {b:g}" for m, b in self.problem.constraints.items())
                    self.stopped_because = (
                        f"no new feasible candidate: {rejected} proposals broke {limits} before "
                        "training (relax the constraints or search a smaller-scale space)"
                    )
                else:
                    self.stopped_because = "the strategy has nothing new to propose (space exhausted)"
                log.info("run %s: %s", self.info.run_id, self.stopped_because)
                return None
            arch = asked[0]
            if self._answer_without_evaluating(arch):
                idle += 1
                if idle >= MAX_IDLE_PROPOSALS:
                    self.stopped_because = (
                        f"{idle} proposals in a row were duplicates or known infeasible"
                    )
                    log.warning("run %s: stopping, %s", self.info.run_id, self.stopped_because)
                    self._exhausted = True
                    return None
                continue
            key = self._pending_key(arch)
            self._pending[key] = arch
            self._dispatched.add(key)
            return arch
        return None

    @property
    def finished(self) -> bool:
        """True when no more proposals will come (budget reached or the strategy is done)."""
        return bool(self.stopped_because) or self._exhausted

    def evaluate(self, arch: Any) -> Trial:
        """Evaluate in this process (the local backend)."""
        return self._evaluate(arch)

    def finish(self, arch: Any, trial: Trial) -> None:
        """Tell the strategy an evaluation's outcome and commit it."""
        self._pending.pop(self._pending_key(arch), None)
        self.strategy.tell(arch, trial.told())
        self._commit(arch, trial)

    def failed_trial(self, arch: Any, error: str, wall_s: float = 0.0,
                     metrics: Mapping[str, Any] | None = None, status: str = "failed") -> Trial:
        """A trial that ended without a result from the evaluator (worker lost, stopped early)."""
        key = self._pending_key(arch)
        return Trial(self._c.trials, key, status, dict(metrics or {}), wall_s, _now(), error)

    def outcome(self, arch: Any, raw: Any, wall_s: float, stamp: str) -> Trial:
        """The trial of what an evaluator returned elsewhere (a Ray worker)."""
        try:
            metrics, status, error = normalise_metrics(raw, self.problem)
        except Exception as exc:  # noqa: BLE001 - a bad return value is a failed trial
            metrics, status, error = {}, "failed", _error_text(exc)
        if status != "ok" and status != "pruned":
            metrics = {}
        return Trial(self._c.trials, self._pending_key(arch), status, metrics, wall_s, stamp, error)

    def _pending_key(self, arch: Any) -> str:
        try:
            return self.space.key(arch)
        except Exception:  # noqa: BLE001 - not a member: the evaluation records why
            return str(arch)

    def _answer_without_evaluating(self, arch: Any) -> bool:
        """Tell the strategy about a duplicate or known-infeasible proposal; True if it was one."""
        try:
            key = self.space.key(arch)
        except Exception:  # noqa: BLE001 - not a member: the evaluation records why
            return False
        if key in self._c.seen:
            self._c.duplicates += 1
            self.strategy.tell(arch, self._c.seen[key])
            return True
        if self.problem.known_infeasible(arch):
            told = {"status": "failed", "error": "known infeasible before evaluation"}
            self._c.seen[key] = told
            self._c.skipped += 1
            self.strategy.tell(arch, told)
            return True
        return False

    def _evaluate(self, arch: Any) -> Trial:
        reported: dict[str, Any] = {}
        hook = getattr(self.strategy, "report", None)  # e.g. a pruner: may raise TrialPruned

        def report(step: int, metrics: dict[str, float]) -> None:
            reported.clear()
            reported.update(metrics)
            if hook is not None:
                hook(arch, step, metrics)
            if self.pruning is not None:
                self.pruning.report(step, metrics)

        start = time.perf_counter()
        stamp = _now()
        try:
            key = self.space.key(arch)
        except Exception as exc:  # noqa: BLE001 - a strategy's bad proposal is a failed trial
            key = str(arch)
            return Trial(self._c.trials, key, "failed", {}, 0.0, stamp, _error_text(exc))
        if self.pruning is not None:
            self.pruning.begin()
        try:
            # Without a listener, no reporter: a training evaluator then skips per-epoch validation.
            listening = hook is not None or self.pruning is not None
            raw = self.evaluator(arch, report if listening else None)
            metrics, status, error = normalise_metrics(raw, self.problem)
        except TrialPruned as exc:
            metrics, status, error = dict(reported), "pruned", str(exc) or None
        except Exception as exc:  # noqa: BLE001 - any evaluator failure is an outcome, not a crash
            log.info("trial %d failed: %s", self._c.trials, _error_text(exc))
            metrics, status, error = {}, "failed", _error_text(exc)
        if status != "ok" and status != "pruned":
            metrics = {}
        if self.pruning is not None:
            self.pruning.end(status, metrics)
        wall = time.perf_counter() - start
        return Trial(self._c.trials, key, status, metrics, wall, stamp, error)

    def _commit(self, arch: Any, trial: Trial) -> None:
        row = trial.row()
        self._c.seen[trial.arch] = trial.told()
        self._c.trials += 1
        self._c.elapsed_s, self._clock = self._elapsed(), time.monotonic()
        append_rows(self.dir.trials, [row], base=TRIAL_COLUMNS, tail=TRIAL_TAIL)
        self._save_state()  # the commit point
        append_leaderboard(self.out, [self._leaderboard_row(row)])
        self._update_best(trial)
        if self.on_trial is not None:
            self.on_trial(Progress(
                trial=trial, done=self._c.trials, budget=self.budget, elapsed_s=self._c.elapsed_s,
                best=self._best, metric=self.problem.objectives[0].metric,
            ))

    def _update_best(self, trial: Trial) -> None:
        objective = self.problem.objectives[0]
        value = trial.metrics.get(objective.metric)
        if trial.status != "ok" or not isinstance(value, (int, float)) or math.isnan(value):
            return
        if self.problem.violation(trial.metrics) > 0:
            return
        self._best = best_so_far([v for v in (self._best, float(value)) if v is not None],
                                 objective.direction)[-1]

    def _leaderboard_row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        info = self.info
        return {"run_id": info.run_id, "space": info.space, "strategy": info.strategy,
                "evaluator": info.evaluator, "seed": info.seed, **row}

    # -- state -------------------------------------------------------------------------------------
    def _save_state(self) -> None:
        state = {
            "version": STATE_VERSION,
            "run_id": self.info.run_id,
            "trials": self._c.trials,
            "elapsed_s": self._c.elapsed_s,
            "skipped": self._c.skipped,
            "duplicates": self._c.duplicates,
            "seen": self._c.seen,
            "strategy_name": self.info.strategy,
            "strategy": self.strategy.state_dict(),
            "pruning": self.pruning.state_dict() if self.pruning is not None else [],
            "pending": list(self._pending),
        }
        atomic_write_json(self.dir.state, state)

    def _corrupt(self, why: str) -> NasError:
        return NasError(
            f"cannot resume run {self.info.run_id}: {self.dir.state} is corrupt ({why}); its "
            f"trials so far stay in {self.dir.trials.name} and the leaderboard: start a new run "
            "(another run_id), or restore state.json from a backup"
        )

    def _restore(self) -> None:
        if not self.dir.state.is_file():
            raise NasError(
                f"cannot resume run {self.info.run_id}: no state.json in {self.dir.path}"
            )
        try:
            state = json.loads(self.dir.state.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise self._corrupt(" ".join(str(exc).split())) from None
        needed = ("version", "trials", "elapsed_s", "seen", "strategy")
        if not isinstance(state, dict) or any(k not in state for k in needed):
            raise self._corrupt("missing fields")
        if state["version"] != STATE_VERSION:
            raise self._corrupt(f"state version {state['version']}, expected {STATE_VERSION}")
        name = state.get("strategy_name")
        if name is not None and name != self.info.strategy:
            raise NasError(
                f"cannot resume run {self.info.run_id} with strategy {self.info.strategy}: "
                f"it was run with {name}"
            )
        try:
            self.strategy.load_state_dict(state["strategy"])
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise self._corrupt(f"strategy state does not load: {type(exc).__name__}: {exc}") from None
        self._c = _Counters(
            trials=int(state["trials"]), elapsed_s=float(state["elapsed_s"]),
            seen={str(k): dict(v) for k, v in state["seen"].items()},
            skipped=int(state.get("skipped", 0)), duplicates=int(state.get("duplicates", 0)),
        )
        if self.pruning is not None:
            self.pruning.load_state_dict(state.get("pruning", []))
        self._restore_pending(state.get("pending", []))
        self._restore_trials()
        self._restore_best()
        self._sync_leaderboard()
        log.info("run %s resumed after %d trials", self.info.run_id, self._c.trials)

    def _restore_pending(self, keys: list[str]) -> None:
        """Proposals that were being evaluated (in parallel) when the run stopped: evaluated first."""
        for key in keys:
            if key in self._c.seen:
                continue
            try:
                self._pending[key] = self.space.from_string(key)
            except Exception as exc:  # noqa: BLE001 - cannot rebuild it: say so, go on without it
                log.warning("run %s: in-flight proposal %s is dropped (%s)", self.info.run_id, key, exc)

    def _restore_trials(self) -> None:
        """Cut trials.csv back to the committed rows (a crash may leave one uncommitted row)."""
        n = self._c.trials
        if not self.dir.trials.is_file():
            if n:
                raise self._corrupt(f"it records {n} trials but {self.dir.trials.name} is missing")
            return
        rows = read_rows(self.dir.trials)
        if len(rows) < n:
            raise self._corrupt(f"it records {n} trials but {self.dir.trials.name} has {len(rows)}")
        if len(rows) > n or self.dir.trials.read_bytes()[-1:] not in (b"\n", b""):
            kept = rows[:n]
            header = list(rows[0].keys()) if rows else list(TRIAL_COLUMNS + TRIAL_TAIL)
            # A column only the dropped row had must not survive it.
            header = [c for c in header if c in TRIAL_COLUMNS + TRIAL_TAIL or any(r.get(c) for r in kept)]
            rewrite_rows(self.dir.trials, kept, header)

    def _restore_best(self) -> None:
        for told in self._c.seen.values():
            if told.get("status") == "ok":
                self._update_best(Trial(0, "", "ok", told, 0.0, ""))

    def _sync_leaderboard(self) -> None:
        if not self.dir.trials.is_file():
            return
        present = leaderboard_keys(self.out, self.info.run_id)
        missing = [r for r in read_rows(self.dir.trials) if r.get("trial") not in present]
        if missing:
            # Values are the exact text of trials.csv; empty cells stay empty.
            append_leaderboard(self.out, [self._leaderboard_row(
                {k: v for k, v in r.items() if v != ""}) for r in missing])
