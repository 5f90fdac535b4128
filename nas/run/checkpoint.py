"""A run's checkpoint: its state saved after every committed trial (``state.json``, the commit
point), and resuming from it.

``Checkpoint`` is held by ``nas.run.runner.Run``: the run hands it what it saves (the counters, the
jobs in flight, the strategy, the pruner, the nearest miss) and gets back what a resume restores;
the checkpoint reads and writes only through the run's store (``nas.run.store``). The protocol
(what makes a resumed run the run that was interrupted):

1. a trial is *committed* when its row is appended to ``trials.csv`` and then ``state.json`` is
   replaced (atomically) with the strategy's ``state_dict()`` taken *after* ``tell`` (or
   ``retell``) and the runner's counters; ``state.json`` is the commit point, ``trials.csv`` may
   hold one row more;
2. on resume the strategy loads that state, ``trials.csv`` is cut back to the committed rows, the
   jobs that were in flight are evaluated first, and the loop goes on. A trial that was being
   evaluated when the process died was never committed, so it is simply run again: no trial is
   lost or repeated, and with the sequential ``local`` backend and a strategy whose whole state is
   in ``state_dict()``, the trials are identical to an uninterrupted run with the same seed. The
   selection stage is a function of the committed draws, so it resumes the same way;
3. leaderboard rows are appended after the commit; a resume first adds any committed trial the
   leaderboard lacks (the process may have died between the two writes).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nas.run.pruning import Pruning
from nas.run.store import RunStore
from nas.run.trial import Job, RunInfo
from nas.strategies.base import NearestMiss, Strategy
from search_spaces.errors import NasError

STATE_VERSION = 1


@dataclass
class Counters:
    """What a run has done so far, saved in ``state.json``."""

    trials: int = 0  # committed evaluations, baselines included: the next trial's number
    spent: int = 0  # committed evaluations that count against the budget (search and select)
    elapsed_s: float = 0.0
    wall_s: float = 0.0  # evaluation time of the committed trials (sizes the stage's time reserve)
    seen: dict[str, dict[str, Any]] = field(default_factory=dict)  # searched key -> first told
    draws: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # key -> every told
    skipped: int = 0
    duplicates: int = 0
    stage: str = "search"  # baseline | search | select | done
    rung: int = 0
    members: list[str] = field(default_factory=list)  # the selection rung's candidates
    entered: int = 0  # candidates the selection stage started with (sizes its rungs)
    budget: int | None = None  # the budgets this state was saved under (a raised one reopens search)
    budget_s: float | None = None


@dataclass(frozen=True)
class Restored:
    """What a resume gives back to the run."""

    counters: Counters
    in_flight: list[tuple[str, int, str]]  # (key, repeat, stage) of the jobs that were being evaluated
    raised: bool  # this resume gives the search more budget than the saved run had


class Checkpoint:
    """A run's state saved after each commit and restored on resume, by the protocol above."""

    def __init__(self, store: RunStore, info: RunInfo, budget: int | None, budget_s: float | None) -> None:
        self.store = store
        self.info = info
        self.budget = budget
        self.budget_s = budget_s

    def save(self, c: Counters, in_flight: Iterable[Job], strategy: Strategy, misses: NearestMiss,
             pruning: Pruning | None) -> None:
        """Replace the saved state: the commit point of the trial committed last."""
        self.store.save_state({
            "version": STATE_VERSION,
            "run_id": self.info.run_id,
            "trials": c.trials,
            "spent": c.spent,
            "elapsed_s": c.elapsed_s,
            "wall_s": c.wall_s,
            "skipped": c.skipped,
            "nearest_miss": misses.state(),
            "duplicates": c.duplicates,
            "seen": c.seen,
            "draws": c.draws,
            "stage": c.stage,
            "rung": c.rung,
            "members": c.members,
            "entered": c.entered,
            "budget": self.budget,
            "budget_s": self.budget_s,
            "strategy_name": self.info.strategy,
            "strategy": strategy.state_dict(),
            "pruning": pruning.state_dict() if pruning is not None else [],
            "pending": [{"key": j.key, "repeat": j.repeat, "stage": j.stage} for j in in_flight],
        })

    def restore(self, strategy: Strategy, misses: NearestMiss, pruning: Pruning | None) -> Restored:
        """Load the saved state into ``strategy``, ``misses`` and ``pruning``, cut the trials back to
        the committed rows and add those the leaderboard lacks; NasError naming the way out when the
        state is missing or corrupt."""
        if self.store.dir is None:
            raise NasError("a run kept in memory (out=None) cannot be resumed")
        try:
            state = self.store.load_state()
        except (OSError, ValueError) as exc:  # unreadable, not UTF-8, not JSON
            raise self._corrupt(" ".join(str(exc).split())) from None
        if state is None:
            raise NasError(f"cannot resume run {self.info.run_id}: no state.json in {self.store.dir.path}")
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
            strategy.load_state_dict(state["strategy"])
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise self._corrupt(f"strategy state does not load: {type(exc).__name__}: {exc}") from None
        try:
            counters = _counters(state)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise self._corrupt(f"counters do not load: {type(exc).__name__}: {exc}") from None
        try:
            misses.load(state.get("nearest_miss"))
        except (TypeError, ValueError) as exc:
            raise self._corrupt(f"nearest_miss does not load: {exc}") from None
        if pruning is not None:
            pruning.load_state_dict(state.get("pruning", []))
        in_flight = [(entry, 0, "search") if isinstance(entry, str) else
                     (str(entry["key"]), int(entry["repeat"]), str(entry["stage"]))
                     for entry in state.get("pending", [])]
        self._keep_committed(counters.trials)
        self._sync_leaderboard()
        return Restored(counters, in_flight, self._raised(counters))

    def _corrupt(self, why: str) -> NasError:
        rdir = self.store.dir  # not None: a run kept in memory is refused before its state is read
        return NasError(
            f"cannot resume run {self.info.run_id}: {rdir.state} is corrupt ({why}); its "
            f"trials so far stay in {rdir.trials.name} and the leaderboard: start a new run "
            "(another run_id), or restore state.json from a backup"
        )

    def _raised(self, saved: Counters) -> bool:
        """Whether this resume gives the search more than the saved run had."""
        more = self.budget is not None and saved.budget is not None and self.budget > saved.budget
        more_time = self.budget_s is not None and saved.budget_s is not None and self.budget_s > saved.budget_s
        return more or more_time

    def _keep_committed(self, n: int) -> None:
        """Cut the trials back to the committed rows (a crash may leave one uncommitted row)."""
        found = self.store.keep_trials(n)
        if found is None and n:
            raise self._corrupt(f"it records {n} trials but {self.store.dir.trials.name} is missing")
        if found is not None and found < n:
            raise self._corrupt(f"it records {n} trials but {self.store.dir.trials.name} has {found}")

    def _sync_leaderboard(self) -> None:
        """Step 3: add the committed trials the leaderboard lacks."""
        rows = self.store.trial_rows()
        if not rows:
            return
        present = self.store.leaderboard_keys()
        missing = [r for r in rows if r.get("trial") not in present]
        if missing:
            # Values are the exact text of trials.csv; empty cells stay empty.
            self.store.append_leaderboard([self.info.leaderboard_row(
                {k: v for k, v in r.items() if v != ""}) for r in missing])


def _counters(state: Mapping[str, Any]) -> Counters:
    seen = {str(k): dict(v) for k, v in state["seen"].items()}
    if "draws" in state:
        draws = {str(k): [dict(t) for t in v] for k, v in state["draws"].items()}
    else:  # a state saved before repeats: one evaluation per key that was not refused unseen
        draws = {k: ([] if v.get("error") == "known infeasible before evaluation" else [v])
                 for k, v in seen.items()}
    return Counters(
        trials=int(state["trials"]), spent=int(state.get("spent", state["trials"])),
        elapsed_s=float(state["elapsed_s"]), wall_s=float(state.get("wall_s", 0.0)),
        seen=seen, draws=draws,
        skipped=int(state.get("skipped", 0)), duplicates=int(state.get("duplicates", 0)),
        stage=str(state.get("stage", "search")), rung=int(state.get("rung", 0)),
        members=[str(k) for k in state.get("members") or []],
        entered=int(state.get("entered", 0)),
        budget=state.get("budget"), budget_s=state.get("budget_s"),
    )
