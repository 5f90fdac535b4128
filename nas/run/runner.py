"""The run loop: baselines, then ask -> dedupe -> evaluate -> record -> tell with the leaders
confirmed by repeats, checkpointed after every evaluation (the resume protocol: ``nas.run.checkpoint``).

Stages, in order: ``baseline`` (hand-designed references, evaluated as often as a finalist,
outside the budget), ``search`` (the strategy's proposals; with ``select=race`` interleaved with
repeats of the leading candidates, rows with stage ``select``) and a final ``select`` stage
(halving's rungs, or racing's last confirmation with what budget is left; ``nas.select.selection``). A
stage starts when the previous one has nothing in flight; within one, a parallel backend runs its
jobs side by side.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from evaluators.base import TrialPruned
from evaluators.registry import as_evaluator
from nas.backends import make_backend
from nas.report.plots import run_plots
from nas.report.summary import run_summary
from nas.run.checkpoint import Checkpoint, Counters
from nas.run.folder import RunDir
from nas.run.latencybound import LatencyBound
from nas.run.problem import best_row, mean_metrics, winner
from nas.run.pruning import Pruning
from nas.run.store import RunFiles, RunStore
from nas.run.trial import Baseline, Job, Progress, RunInfo, Trial, error_text, now
from nas.run.trial import normalise_metrics as normalise
from nas.select.selection import Selection, rank
from nas.strategies.base import Problem, Strategy
from search_spaces.errors import ConfigError, NasError
from search_spaces.space import SearchSpace

log = logging.getLogger(__name__)

# Proposals in a row that bring nothing new (duplicates, known-infeasible) before the search stops.
MAX_IDLE_PROPOSALS = 1000


def check_budgets(budget: Any, budget_hours: Any) -> tuple[int | None, float | None]:
    """(evaluations, hours) of a run, checked: at least one of them, a whole number >= 1 and a
    finite number > 0 (the one check, for the API's settings and for a Run built directly)."""
    if budget is not None:
        if not isinstance(budget, int) or isinstance(budget, bool):
            raise ConfigError(f"budget: expected int, got {budget!r}")
        if budget < 1:
            raise ConfigError(f"budget: must be >= 1 evaluation, got {budget}")
    if budget_hours is not None:
        if (isinstance(budget_hours, bool) or not isinstance(budget_hours, (int, float)) or not budget_hours > 0
                or math.isinf(budget_hours)):
            raise ConfigError(f"budget_hours: must be a number > 0, got {budget_hours!r}")
        budget_hours = float(budget_hours)
    if budget is None and budget_hours is None:
        raise ConfigError("a run needs a budget: budget=N evaluations and/or budget_hours=H")
    return budget, budget_hours


class Run:
    """One search: a strategy proposing members of a space, scored by an evaluator, recorded.

    The search stops after ``budget`` evaluations less what the selection stage reserves (failed
    and pruned ones count: they were spent), after ``budget_hours`` of wall time (checked between
    trials, summed across resumes, the selection stage's expected time reserved), or when the
    strategy has nothing new to propose; then the selection stage confirms the winner. Its trials
    and state go to ``store`` (a run folder, or memory), each commit through ``checkpoint``.
    """

    def __init__(
        self,
        space: SearchSpace,
        strategy: Strategy,
        evaluator: Callable[..., Any],
        problem: Problem | None = None,
        *,
        run_dir: str | Path | None = None,
        budget: int | None = None,
        budget_hours: float | None = None,
        seed: int = 0,
        backend: Any = "local",
        out: str | Path | None = None,
        info: RunInfo | None = None,
        on_trial: Callable[[Progress], None] | None = None,
        pruner: str = "none",
        selection: Selection | None = None,
        baselines: Sequence[Baseline] = (),
        store: RunStore | None = None,
        latency_bound: LatencyBound | None = None,
    ) -> None:
        budget, budget_hours = check_budgets(budget, budget_hours)
        if store is None:
            if run_dir is None:
                raise NasError("a run needs a run_dir (or a store)")
            store = RunFiles(run_dir, out)
        self.store: RunStore = store
        self.space = space
        self.strategy = strategy
        self.evaluator = as_evaluator(evaluator)  # a plain callable arch -> dict works too
        self.problem = problem or strategy.problem
        self.budget = budget
        self.budget_s = None if budget_hours is None else budget_hours * 3600.0
        self.seed = seed
        self.backend = make_backend(backend) if isinstance(backend, str) else backend
        self.info = info or RunInfo(
            run_id=store.run_id,
            space=space.name,
            strategy=strategy.name,
            evaluator=str(self.evaluator.name),
            seed=seed,
        )
        self.checkpoint = Checkpoint(store, self.info, budget, self.budget_s)
        self.on_trial = on_trial
        self.pruning = Pruning(pruner, self.problem.objectives[0]) if pruner != "none" else None
        wanted = selection if selection is not None else Selection()
        # An evaluator that gives the same numbers every time is never repeated.
        self.selection = wanted.fitted(budget) if self.evaluator.noisy else Selection("none")
        self.baseline_list = list(baselines)
        # key -> architecture, in order; one that breaks a constraint before training is not run
        self.baselines = {b.key: b.arch for b in baselines if not b.refused}
        self.baseline_repeats = self.selection.baseline_repeats(budget)
        self.latency_bound = latency_bound  # max_latency_ms=baseline resolved: the summary says where from
        self.stopped_because = ""
        self._search_end = ""
        self._c = Counters(stage="baseline" if self.baselines else "search")
        self._best: float | None = None
        # searched key with an ok evaluation -> (constraint violation, signed mean of objective 1)
        self._stats: dict[str, tuple[float, float]] = {}
        self._clock = 0.0
        # job id -> job handed out and not committed; saved, so a resumed run evaluates them first
        self._pending: dict[str, Job] = {}
        self._dispatched: set[str] = set()

    # -- public ------------------------------------------------------------------------------------
    @property
    def dir(self) -> RunDir | None:
        """The run's folder (its file names), or None for a run kept in memory."""
        return self.store.dir

    def run(self, resume: bool = False) -> pd.DataFrame:
        """Run (or resume) to the budget; return the trials table (one row per evaluation)."""
        with self.store.lock():
            try:
                if resume:
                    self._resume()
                else:
                    if self.store.has_state():
                        raise NasError(
                            f"run {self.info.run_id} already exists in {self.store.path}: resume it "
                            "(resume=true) or choose another run_id"
                        )
                    self._save_state()
                self._clock = time.monotonic()
                self.backend.drive(self)
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
                    f"nas run resume=true run_id={self.info.run_id} out={self.store.out}"
                ) from None

    def trials(self) -> pd.DataFrame:
        """The committed trials (from ``trials.csv``, or memory)."""
        return self.store.trials()

    def best(self, trials: pd.DataFrame) -> dict[str, Any] | None:
        """The winner: the best mean among the searched candidates with the most repeats."""
        return best_row(trials, self.problem, self.selection.winner_repeats)

    def summary(self, trials: pd.DataFrame) -> dict[str, Any]:
        """What the run concludes (``best.yaml``): winner, noise, baselines, Pareto set."""
        return run_summary(trials, self.problem, self.selection, self.info, self.baseline_list,
                           latency_bound=self.latency_bound, refused=self.refused)

    def write_summary(self, trials: pd.DataFrame) -> None:
        """``best.yaml`` and the plots (a plotting failure is logged, never fatal)."""
        if self.store.path is None:
            return
        summary = self.summary(trials)
        self.store.write_text("best.yaml", yaml.safe_dump(summary, sort_keys=False, width=10_000))
        try:
            run_plots(trials, self.problem, self.store.path, title=self.info.run_id,
                      baselines={b.key: b.name for b in self.baseline_list},
                      winner=(summary.get("best") or {}).get("arch"),
                      min_repeats=self.selection.winner_repeats)
        except Exception as exc:  # noqa: BLE001 - a plot is a convenience; results are safe already
            log.warning("could not draw the plots of run %s: %s", self.info.run_id, exc)

    # -- what backends drive: next job, one evaluation, its commit --------------------------------
    @property
    def completed(self) -> int:
        """Trials committed so far (across resumes)."""
        return self._c.trials

    @property
    def in_flight(self) -> int:
        """Jobs handed out for evaluation and not yet committed."""
        return len(self._pending)

    @property
    def total(self) -> int | None:
        """Evaluations the run makes in all, baselines included (None under a time budget only)."""
        if self.budget is None:
            return None
        return self.budget + len(self.baselines) * self.baseline_repeats

    @property
    def found_feasible(self) -> bool:
        """Whether a searched candidate was evaluated and meets the constraints (on its mean)."""
        return any(violation <= 0 for violation, _ in self._stats.values())

    @property
    def refused(self) -> int:
        """Proposals refused for breaking a constraint before evaluation: by the strategy, or here."""
        return int(self.strategy.rejected) + self._c.skipped

    @property
    def finished(self) -> bool:
        """True when no more jobs will come."""
        return bool(self.stopped_because)

    def next_job(self) -> Job | None:
        """The next evaluation (jobs an interrupted run left in flight first), or None: then
        ``finished`` says whether more may come once the jobs in flight are committed. Duplicates
        and candidates known to be infeasible are answered here without an evaluation."""
        for job_id, job in self._pending.items():
            if job_id not in self._dispatched:
                return self._dispatch(job)
        while not self.stopped_because:
            stage = self._c.stage
            job = (self._next_baseline() if stage == "baseline" else
                   self._next_search() if stage == "search" else
                   self._next_select() if stage == "select" else None)
            if job is not None:
                return self._dispatch(job)
            if self._pending or (stage == "search" and not self._search_end):
                return None  # in-flight results decide what comes next
            self._advance()
        return None

    def evaluate(self, job: Job) -> Trial:  # the local backend: in this process
        return self._evaluate(job)

    def finish(self, job: Job, trial: Trial) -> None:
        """Tell the strategy a search evaluation's outcome and commit it."""
        self._pending.pop(job.id, None)
        if job.stage == "search":
            self.strategy.tell(job.arch, trial.told())
        elif job.key in self._c.seen and trial.status == "ok":
            # The strategy learns the running mean, not the latest draw; before the commit, so the
            # state saved with this trial holds it.
            told = [t for t in [*self._c.draws[job.key], trial.told()] if t.get("status") == "ok"]
            self.strategy.retell(job.arch, {**mean_metrics(told), "status": "ok"})
        self._commit(job, trial)

    def failed_trial(self, job: Job, error: str, wall_s: float = 0.0,
                     metrics: Mapping[str, Any] | None = None, status: str = "failed") -> Trial:
        """A trial that ended without a result from the evaluator (worker lost, stopped early)."""
        return self._trial(job, status, dict(metrics or {}), wall_s, now(), error)

    def outcome(self, job: Job, raw: Any, wall_s: float, stamp: str) -> Trial:
        """The trial of what an evaluator returned elsewhere (a Ray worker)."""
        try:
            metrics, status, error = normalise(raw, self.problem)
        except Exception as exc:  # noqa: BLE001 - a bad return value is a failed trial
            metrics, status, error = {}, "failed", error_text(exc)
        if status != "ok" and status != "pruned":
            metrics = {}
        return self._trial(job, status, metrics, wall_s, stamp, error)

    # -- the checkpoint: saved after every commit, restored on resume -------------------------------
    def _save_state(self) -> None:
        self.checkpoint.save(self._c, self._pending.values(), self.strategy, self.problem.misses, self.pruning)

    def _resume(self) -> None:
        """Go on from the last commit (``nas.run.checkpoint``): its counters and stage, the jobs it
        had in flight (evaluated first), the candidates' means."""
        restored = self.checkpoint.restore(self.strategy, self.problem.misses, self.pruning)
        self._c = restored.counters
        if self._c.stage in ("select", "done") and restored.raised:
            self._c.stage, self._c.members = "search", []  # a raised budget: search on, select again
        for key, repeat, stage in restored.in_flight:
            if stage == "search" and key in self._c.seen:
                continue
            if len(self._c.draws.get(key, ())) > repeat:
                continue
            try:
                arch = self._arch_of(key)
            except Exception as exc:  # noqa: BLE001 - cannot rebuild it: say so, go on without it
                log.warning("run %s: in-flight job %s is dropped (%s)", self.info.run_id, key, exc)
                continue
            job = Job(arch, key, repeat, stage)
            self._pending[job.id] = job
        for key in self._c.seen:
            self._note(key)
        self._update_best()
        if self._c.stage == "done":  # after the means: the stop reason says whether one is feasible
            self._search_left()  # names the budget that ended it
            self._finish_stages()
        log.info("run %s resumed after %d trials", self.info.run_id, self._c.trials)

    # -- stages --------------------------------------------------------------------------------------
    def _dispatch(self, job: Job) -> Job:
        self._pending[job.id] = job
        self._dispatched.add(job.id)
        return job

    def _repeats_of(self, key: str) -> int:
        """Evaluations of ``key`` committed or in flight: the next one's repeat number."""
        return len(self._c.draws.get(key, ())) + sum(1 for j in self._pending.values() if j.key == key)

    def _next_baseline(self) -> Job | None:
        for key, arch in self.baselines.items():
            if self._repeats_of(key) < self.baseline_repeats:
                return Job(arch, key, self._repeats_of(key), "baseline")
        return None

    def _next_search(self) -> Job | None:
        idle = 0
        while not self._search_end and self._search_left():
            race = self._race_job()
            if race is not None:
                return race
            asked = self.strategy.ask(1)
            if not asked:
                if self._pending:
                    return None  # in-flight results may let the strategy propose again
                rejected = self.strategy.rejected
                if rejected:
                    limits = ", ".join(f"{m} <= {b:g}" for m, b in self.problem.constraints.items())
                    self._search_end = (
                        f"no new feasible candidate: {rejected} proposals broke {limits} before "
                        "training (relax the constraints or search a smaller-scale space)"
                    )
                else:
                    self._search_end = "the strategy has nothing new to propose (space exhausted)"
                log.info("run %s: %s", self.info.run_id, self._search_end)
                return None
            arch = asked[0]
            if self._answer_without_evaluating(arch):
                idle += 1
                if idle >= MAX_IDLE_PROPOSALS:
                    self._search_end = f"{idle} proposals in a row were duplicates or known infeasible"
                    log.warning("run %s: stopping, %s", self.info.run_id, self._search_end)
                    return None
                continue
            key = self._key(arch)
            return Job(arch, key, self._repeats_of(key), "search")
        return None

    def _race_job(self) -> Job | None:
        """A repeat of one of the ``top`` candidates by mean that has too few evaluations."""
        selection = self.selection
        if not selection.racing or len(self._stats) < selection.race_start(self.budget):
            return None
        for key in rank(self._stats)[: selection.top]:
            if self._repeats_of(key) < selection.repeats:
                return Job(self._arch_of(key), key, self._repeats_of(key), "select")
        return None

    def _search_left(self) -> bool:
        """Whether the search may dispatch another evaluation (sets ``_search_end`` when not)."""
        reserve = self.selection.reserve(min(self.selection.k, self._candidate_count()))
        if self.budget is not None and self._c.spent + len(self._pending) + reserve >= self.budget:
            self._search_end = f"budget of {self.budget} evaluations reached"
            return False
        if self.budget_s is not None:
            mean_wall = self._c.wall_s / self._c.trials if self._c.trials else 0.0
            if self._elapsed() + reserve * mean_wall >= self.budget_s:
                self._search_end = f"time budget of {self.budget_s / 3600:g} h reached"
                return False
        return True

    def _candidate_count(self) -> int:
        """Searched candidates that may enter the selection stage (ok so far, or in flight)."""
        return len(self._stats) + sum(1 for j in self._pending.values() if j.stage == "search")

    def _next_select(self) -> Job | None:
        target = self.selection.rungs(self._c.entered)[self._c.rung][1]
        if self.budget is not None and self._c.spent + len(self._pending) >= self.budget:
            return None  # racing's last rung takes only what the search left
        for key in self._c.members:
            if self._repeats_of(key) < target:
                return Job(self._arch_of(key), key, self._repeats_of(key), "select")
        return None

    def _advance(self) -> None:
        """Move to the next stage (or rung); called when the current one has nothing in flight."""
        stage = self._c.stage
        if stage == "baseline":
            self._c.stage = "search"
        elif stage == "search":
            rungs = self.selection.rungs(min(self.selection.k, len(self._stats)))
            if rungs and not (self.selection.racing and self.budget_s is not None and self.budget is None
                              and self._elapsed() >= self.budget_s):
                self._c.stage, self._c.rung = "select", 0
                self._c.members = rank(self._stats)[: rungs[0][0]]
                self._c.entered = len(self._c.members)
                log.info("run %s: selection stage over %s", self.info.run_id, self._c.members)
            else:
                self._finish_stages()
        elif stage == "select":
            rungs = self.selection.rungs(self._c.entered)
            if self._c.rung + 1 < len(rungs):
                self._c.rung += 1
                self._c.members = rank(self._stats, self._c.members)[: rungs[self._c.rung][0]]
            else:
                self._finish_stages()
        else:
            self._finish_stages()

    def _finish_stages(self) -> None:
        self._c.stage = "done"
        self.stopped_because = self._search_end or "search finished"
        if not self.found_feasible:
            # Nothing to name: the best.yaml and CLI exit code (3) say the same.
            self.stopped_because += "; no feasible candidate was evaluated, so there is no winner"
        elif self.selection.active and (self._c.members or self.selection.racing):
            self.stopped_because += (f"; the winner is the best mean over "
                                     f"{self.selection.repeats} evaluations")

    def _note(self, key: str) -> None:
        """Update ``key``'s entry among the candidates (searched keys with an ok evaluation)."""
        if key not in self._c.seen:
            return
        objective = self.problem.objectives[0]
        told = [t for t in self._c.draws.get(key, ()) if t.get("status") == "ok"]
        values = [float(t[objective.metric]) for t in told
                  if isinstance(t.get(objective.metric), (int, float))]
        values = [v for v in values if not math.isnan(v)]
        if values:
            mean = objective.sign() * sum(values) / len(values)
            self._stats[key] = (self.problem.violation(mean_metrics(told)), mean)

    def _arch_of(self, key: str) -> Any:
        return self.baselines.get(key) or self.space.from_string(key)

    def _key(self, arch: Any) -> str:
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
            self._c.draws.setdefault(key, [])
            self._c.skipped += 1
            self.strategy.tell(arch, told)
            return True
        return False

    # -- one evaluation and its commit ---------------------------------------------------------------
    def _trial(self, job: Job, status: str, metrics: dict[str, Any], wall_s: float, stamp: str,
               error: str | None) -> Trial:
        return Trial(self._c.trials, job.key, status, metrics, wall_s, stamp, error, job.repeat, job.stage)

    def _evaluate(self, job: Job) -> Trial:
        reported: dict[str, Any] = {}
        searching = job.stage == "search"
        hook = self.strategy.report if searching else None  # None unless the strategy listens
        pruning = self.pruning if searching else None

        def report(step: int, metrics: dict[str, float]) -> None:
            reported.clear()
            reported.update(metrics)
            if hook is not None:
                hook(job.arch, step, metrics)
            if pruning is not None:
                pruning.report(step, metrics)

        start = time.perf_counter()
        stamp = now()
        if searching:
            try:
                self.space.key(job.arch)
            except Exception as exc:  # noqa: BLE001 - a strategy's bad proposal is a failed trial
                return self._trial(job, "failed", {}, 0.0, stamp, error_text(exc))
        if pruning is not None:
            pruning.begin()
        try:
            # Without a listener, no reporter: a training evaluator then skips per-epoch validation.
            listening = hook is not None or pruning is not None
            raw = self.evaluator(job.arch, report if listening else None, repeat=job.repeat)
            metrics, status, error = normalise(raw, self.problem)
        except TrialPruned as exc:
            metrics, status, error = dict(reported), "pruned", str(exc) or None
        except Exception as exc:  # noqa: BLE001 - any evaluator failure is an outcome, not a crash
            log.info("trial %d failed: %s", self._c.trials, error_text(exc))
            metrics, status, error = {}, "failed", error_text(exc)
        if status != "ok" and status != "pruned":
            metrics = {}
        if pruning is not None:
            pruning.end(status, metrics)
        return self._trial(job, status, metrics, time.perf_counter() - start, stamp, error)

    def _commit(self, job: Job, trial: Trial) -> None:
        row = trial.row()
        told = trial.told()
        self._c.draws.setdefault(job.key, []).append(told)
        if job.stage == "search":
            self._c.seen.setdefault(job.key, told)
        self._c.trials += 1
        if job.stage != "baseline":
            self._c.spent += 1
        self._c.wall_s += trial.wall_s
        self._c.elapsed_s, self._clock = self._elapsed(), time.monotonic()
        self.store.append_trial(row)
        self._save_state()  # the commit point
        self.store.append_leaderboard([self.info.leaderboard_row(row)])
        self._note(job.key)
        self._update_best()
        if self.on_trial is not None:
            self.on_trial(Progress(
                trial=trial, done=self._c.trials, budget=self.total, elapsed_s=self._c.elapsed_s,
                best=self._best, metric=self.problem.objectives[0].metric, refused=self.refused,
                nearest=self.problem.misses.describe(),
            ))

    def _update_best(self) -> None:
        """The mean of the searched candidate that leads (`winner` over every mean so far, each
        counted once), for progress displays."""
        stats = list(self._stats.values())
        best = winner([1] * len(stats), [mean for _, mean in stats], [violation for violation, _ in stats])
        self._best = None if best is None else self.problem.objectives[0].sign() * stats[best][1]

    def _elapsed(self) -> float:
        return self._c.elapsed_s + (time.monotonic() - self._clock)
