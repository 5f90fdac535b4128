"""A run's state on disk: ``state.json`` (the commit point), and resuming from it.

``RunState`` is the part of ``nas.run.runner.Run`` that saves its counters and strategy after every
committed trial and, on resume, restores them. The protocol (what makes a resumed run the run
that was interrupted):

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

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nas.run.files import TRIAL_COLUMNS, TRIAL_TAIL, read_rows, rewrite_rows
from nas.run.trial import Job
from search_spaces.errors import NasError

log = logging.getLogger(__name__)

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


class RunState:
    """Saving and restoring a ``Run``'s state (mixed into it: it uses the run's attributes)."""

    def _save_state(self) -> None:
        c = self._c
        state = {
            "version": STATE_VERSION,
            "run_id": self.info.run_id,
            "trials": c.trials,
            "spent": c.spent,
            "elapsed_s": c.elapsed_s,
            "wall_s": c.wall_s,
            "skipped": c.skipped,
            "nearest_miss": self.problem.misses.state(),
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
            "strategy": self.strategy.state_dict(),
            "pruning": self.pruning.state_dict() if self.pruning is not None else [],
            "pending": [{"key": j.key, "repeat": j.repeat, "stage": j.stage}
                        for j in self._pending.values()],
        }
        self.store.save_state(state)

    def _corrupt(self, why: str) -> NasError:
        return NasError(
            f"cannot resume run {self.info.run_id}: {self.dir.state} is corrupt ({why}); its "
            f"trials so far stay in {self.dir.trials.name} and the leaderboard: start a new run "
            "(another run_id), or restore state.json from a backup"
        )

    def _restore(self) -> None:
        if self.dir is None:
            raise NasError("a run kept in memory (out=None) cannot be resumed")
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
        try:
            self._c = self._counters(state)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise self._corrupt(f"counters do not load: {type(exc).__name__}: {exc}") from None
        if self._c.stage in ("select", "done") and self._raised(state):
            self._c.stage, self._c.members = "search", []  # a raised budget: search on, select again
        if self._c.stage == "done":
            self._search_left()  # names the budget that ended it
            self._finish_stages()
        try:
            self.problem.misses.load(state.get("nearest_miss"))
        except (TypeError, ValueError) as exc:
            raise self._corrupt(f"nearest_miss does not load: {exc}") from None
        if self.pruning is not None:
            self.pruning.load_state_dict(state.get("pruning", []))
        self._restore_pending(state.get("pending", []))
        self._restore_trials()
        for key in self._c.seen:
            self._note(key)
        self._update_best()
        self._sync_leaderboard()
        log.info("run %s resumed after %d trials", self.info.run_id, self._c.trials)

    def _counters(self, state: Mapping[str, Any]) -> Counters:
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

    def _raised(self, state: Mapping[str, Any]) -> bool:
        """Whether this resume gives the search more than the saved run had."""
        old, old_s = state.get("budget"), state.get("budget_s")
        more = self.budget is not None and old is not None and self.budget > old
        more_time = self.budget_s is not None and old_s is not None and self.budget_s > old_s
        return more or more_time

    def _restore_pending(self, saved: list[Any]) -> None:
        """Jobs that were being evaluated (in parallel) when the run stopped: evaluated first."""
        for entry in saved:
            key, repeat, stage = (entry, 0, "search") if isinstance(entry, str) else (
                str(entry["key"]), int(entry["repeat"]), str(entry["stage"]))
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

    def _sync_leaderboard(self) -> None:
        if not self.dir.trials.is_file():
            return
        present = self.store.leaderboard_keys()
        missing = [r for r in read_rows(self.dir.trials) if r.get("trial") not in present]
        if missing:
            # Values are the exact text of trials.csv; empty cells stay empty.
            self.store.append_leaderboard([self._leaderboard_row(
                {k: v for k, v in r.items() if v != ""}) for r in missing])
