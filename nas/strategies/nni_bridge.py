"""NNI's multi-trial strategies as ask/tell strategies: ``strategy=nni.TPE`` (``pip install 'nas[nni]'``).

NNI (Microsoft's Neural Network Intelligence, 3.0) runs its own loop: a strategy submits models to
an execution engine and learns from the metrics the engine reports. The bridge runs that loop, in
this process, with NNI's own pieces: the space's ``choices()`` become an NNI model space (one
``nni.choice`` per dimension, over the value indices, in NNI's *simplified* format), NNI's
``SequentialExecutionEngine`` runs each proposal through a ``FunctionalEvaluator``, and that
evaluator's function is where NNI meets ``ask``/``tell``: it hands the proposal to ``ask``, waits
for ``tell``, and returns the first objective (turned into "larger is better") as the model's final
metric. This is the engine, model format and evaluator that
``NasExperimentConfig('sequential', 'simplified')`` gives; the ``NasExperiment`` wrapper itself is
not used, because checkpoints, logs and the record of every trial are the runner's job here, and it
is what writes ``~/nni-experiments`` whatever directory it is told.

How the two loops meet: NNI's loop runs in a thread, strictly taking turns with the caller (a
coroutine made of two threads): ``tell`` hands the outcome over and returns once NNI has its next
proposal ready (or has stopped), so NNI's own computation happens inside ``tell`` and nothing runs
in the background between calls. That keeps a run deterministic and the state taken after ``tell``
consistent. Torch's and NumPy's global random generators are swapped for the bridge's own while NNI
has the turn, so NNI's sampling neither disturbs nor depends on the evaluators' randomness.

What NNI proposes and what it is told:

- a network already told (an identical twin of an earlier one, or a repeat through dimensions that
  are inactive in a conditional space) is answered from memory inside the bridge: ``ask`` never
  returns a member twice and no budget is spent on it;
- a candidate known to break a constraint before training is reported to NNI as a failed model
  (``rejected`` counts it), and so is a failed, pruned or infeasible evaluation: NNI's strategies
  optimise one number and have no notion of constraints;
- NNI proposes one model at a time (the sequential engine): ``ask(n)`` returns at most one member,
  so ``backend=ray`` runs one trial at a time and ``prescreen`` keeps every proposal;
- conditional spaces: NNI sees the flat ``choices()`` (every dimension, conditions ignored); values
  of dimensions inactive under the others are dropped by ``from_choices``;
- only the first objective guides RegularizedEvolution, TPE and PolicyBasedRL (more than one
  objective is an error for them).

Resume: the state holds every outcome told, in order. A resumed strategy starts NNI afresh with the
same seed and answers what NNI proposes again from that memory, without evaluating, until NNI asks
for something new: NNI's seeded strategies then continue exactly as the interrupted run would have.

NNI's strategies run as shipped, with NNI's defaults. What the bridge changes around them: NNI's
TPE loop pauses a second after every model (it polls an engine that may be busy), the bridge's copy
of that loop does not; the engine hands each final metric to the strategy directly instead of
through NNI's process-wide trial channel (NNI threads of two bridges in one process, one of them
closing, would otherwise swap it under each other); PolicyBasedRL skips its farewell policy update
once the run is over. Two properties of NNI show on NAS-Bench-Macro (``benchmarks/search_quality.py``): its
RegularizedEvolution starts with ``population_size`` (100) random members, most of a small budget;
its TPE tuner replaces a suggestion it has already made by the next point of a grid search
(lexicographic, from every dimension's first value), which in a small categorical space takes over
once TPE concentrates.

NNI's log (``nni.log``) goes to ``workdir`` (``nni/`` in the run directory for ``nas run`` and
``nas.search``); nothing is printed and nothing is written in the home directory.
"""
from __future__ import annotations

import functools
import logging
import math
import threading
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from nas.strategies.base import Problem, Strategy
from nas.strategies.nni_loader import NniClosed, NniTrialFailed, load_nni
from search_spaces.errors import NasError
from search_spaces.space import SearchSpace

# Proposals in a row that NNI repeats (answered from memory) or that break a constraint before the
# bridge calls the space exhausted (NNI keeps its own patience; this only stops an endless loop).
MAX_IDLE = 500


class _Session:
    """NNI's side of one strategy: its thread, its model space, and the memory of every outcome.

    Holds no reference to the NniStrategy, so that dropping the strategy closes the session (its
    finalizer) and lets NNI's thread end.
    """

    def __init__(self, owner: str, space: SearchSpace, problem: Problem, seed: int,
                 make: Any, workdir: Path | None) -> None:
        self.owner = owner
        self.space = space
        self.problem = problem
        self.seed = seed
        self.make = make  # () -> a fresh NNI strategy
        self.workdir = workdir
        self.dims = list(space.dimensions())
        labels, used = [], set()
        for i, dim in enumerate(self.dims):
            label = dim.name if "/" not in dim.name and dim.name not in used else f"dim{i}"
            used.add(label)
            labels.append(label)
        self.labels = labels
        self.seen: set[str] = set()
        self.rejected = 0
        self.memory: dict[str, dict[str, Any]] = {}  # key -> what was told (insertion = told order)
        self.answered = 0  # NNI proposals answered from memory (repeats, replay after a resume)
        self.proposals = 0  # NNI proposals in all
        # Turn-taking between the caller and NNI's thread.
        self.cond = threading.Condition()
        self.turn = "main"
        self.offer: tuple[str, Any] | None = None  # NNI's proposal, not yet handed out by ask
        self.outstanding: str | None = None  # key handed out by ask, NNI waits for its outcome
        self.outcome: dict[str, Any] | None = None
        self.thread: threading.Thread | None = None
        self.nni_strategy: Any = None  # NNI's strategy object, once its thread has started
        self.finished = False
        self.closed = False
        self.error: BaseException | None = None
        self.idle = 0  # proposals in a row that brought nothing new
        self._rng_states: tuple[Any, Any] | None = None  # NNI's torch / numpy global RNG states
        self._caller_rng: tuple[Any, Any] | None = None  # the caller's, while NNI has the turn

    # -- caller side ---------------------------------------------------------------------------
    def ask(self) -> Any | None:
        if self.closed or self.outstanding is not None:
            return None  # NNI waits for the outcome of the proposal it has out
        if self.thread is None:
            self._start()
        if self.error is not None:
            error, self.error = self.error, None
            raise NasError(f"strategy {self.owner}: NNI stopped with {type(error).__name__}: "
                           f"{' '.join(str(error).split())}")
        if self.offer is None:
            return None  # NNI has nothing more to propose
        key, arch = self.offer
        self.offer, self.outstanding = None, key
        return arch

    def tell(self, key: str, told: dict[str, Any]) -> None:
        self.seen.add(key)
        self.memory.pop(key, None)
        self.memory[key] = told
        if key == self.outstanding:
            self.outstanding, self.outcome = None, told
            self._hand_over()

    def close(self, wait: float = 0.0) -> None:
        """End NNI's loop; wait up to ``wait`` seconds for its thread to finish (and its log)."""
        with self.cond:
            self.closed = True
            self.cond.notify_all()
        thread = self.thread
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join(wait)

    def _start(self) -> None:
        self.thread = threading.Thread(target=self._main, name=f"nas-{self.owner}", daemon=True)
        with self.cond:
            self.turn = "nni"
            self.thread.start()
            self.cond.wait_for(lambda: self.turn == "main")

    def _hand_over(self) -> None:
        """Give NNI the turn; return when it has its next proposal ready or has stopped."""
        with self.cond:
            self.turn = "nni"
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.turn == "main")

    # -- NNI's thread --------------------------------------------------------------------------
    def _main(self) -> None:
        handler = self._log_handler()
        try:
            self._swap_rng(enter=True)
            nni = load_nni(self.owner)
            model_space = nni["SimplifiedModelSpace"].from_model(
                nni["ChoicesSpace"]([(label, len(d.values)) for label, d in zip(self.labels, self.dims)]),
                nni["SampleEvaluator"](self._evaluate),
            )
            self.nni_strategy = strategy = self.make()
            logging.getLogger("nni.bridge").info(
                "nas: NNI %s %r on space %s (%d dimensions), seed %d", nni["nni"].__version__,
                strategy, self.space.name, len(self.dims), self.seed)
            strategy(model_space, nni["BridgeEngine"](self))
            logging.getLogger("nni.bridge").info(
                "nas: NNI's loop ended (%s) after %d proposals, %d answered from memory",
                "run over" if self.closed else "nothing more to propose", self.proposals, self.answered)
        except NniClosed:
            pass
        except BaseException as exc:  # reported by the next ask
            self.error = exc
            logging.getLogger("nni.bridge").exception("nas: NNI stopped with an error")
        finally:
            if handler is not None:
                logging.getLogger("nni").removeHandler(handler)
                handler.close()
            self._swap_rng(enter=False)
            with self.cond:
                self.finished = True
                self.offer = None
                self.turn = "main"
                self.cond.notify_all()

    def _log_handler(self) -> logging.Handler | None:
        if self.workdir is None:
            return None
        self.workdir.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(self.workdir / "nni.log", encoding="utf-8")
        handler.setFormatter(logging.Formatter("[%(asctime)s] %(levelname)s %(name)s: %(message)s"))
        ident = threading.get_ident()
        handler.addFilter(lambda record: record.thread == ident)
        logging.getLogger("nni").addHandler(handler)
        return handler

    def _swap_rng(self, enter: bool) -> None:
        """Install NNI's own torch/numpy global generator states for its turn (and back)."""
        import torch

        if enter and self._caller_rng is None:
            self._caller_rng = (torch.get_rng_state(), np.random.get_state())
            if self._rng_states is None:
                torch.manual_seed(self.seed)
                np.random.seed(self.seed % 2**32)
            else:
                torch.set_rng_state(self._rng_states[0])
                np.random.set_state(self._rng_states[1])
        elif not enter and self._caller_rng is not None:
            self._rng_states = (torch.get_rng_state(), np.random.get_state())
            torch.set_rng_state(self._caller_rng[0])
            np.random.set_state(self._caller_rng[1])
            self._caller_rng = None

    def _wait_for_outcome(self, key: str, arch: Any) -> dict[str, Any]:
        """Offer a proposal to ask and wait (the caller has the turn) until tell brings its outcome."""
        self._swap_rng(enter=False)
        with self.cond:
            self.offer = (key, arch)
            self.turn = "main"
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.turn == "nni" or self.closed)
        if self.closed:
            raise NniClosed()
        self._swap_rng(enter=True)
        outcome, self.outcome = self.outcome, None
        return outcome or {"status": "failed"}

    def _evaluate(self, sample: Mapping[str, Any]) -> float:
        """NNI's evaluator function: the outcome of one proposal, NNI's final metric of the model."""
        self.proposals += 1
        try:
            choices: dict[str, Any] = {}
            for label, dim in zip(self.labels, self.dims):
                if dim.active(choices):
                    choices[dim.name] = dim.values[int(sample[label])]
            arch = self.space.from_choices(choices)
            key = self.space.key(arch)
        except Exception as exc:  # noqa: BLE001 - not a member (a space with rules): a failed model
            self._idle_step()
            raise NniTrialFailed(f"not a member of {self.space.name}: {exc}") from None
        if key in self.memory:
            told = self.memory[key]
            self.answered += 1
            self._idle_step()
        elif self.problem.known_infeasible(arch):
            self.seen.add(key)
            self.rejected += 1
            told = {"status": "failed", "error": "known infeasible before evaluation"}
            self.memory[key] = told
            self._idle_step()
        else:
            self.seen.add(key)
            self.idle = 0
            told = self._wait_for_outcome(key, arch)
        value = self._value(told)
        if value is None:
            raise NniTrialFailed(str(told.get("error") or told.get("status", "failed")))
        return value

    def _idle_step(self) -> None:
        self.idle += 1
        if self.idle >= MAX_IDLE:  # nothing new for a long while: call the space exhausted
            self.closed = True
            raise NniClosed()

    def _value(self, told: Mapping[str, Any]) -> float | None:
        """The first objective as 'larger is better', or None (failed, missing, infeasible)."""
        if told.get("status", "ok") != "ok" or self.problem.violation(told) > 0:
            return None
        objective = self.problem.objectives[0]
        value = told.get(objective.metric)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            return None
        return objective.sign() * float(value)


class NniStrategy(Strategy):
    """One of NNI's multi-trial strategies, bridged to ask/tell (see the module docstring)."""

    name: ClassVar[str] = "nni"
    nni_name: ClassVar[str] = ""
    single_objective: ClassVar[bool] = True  # it learns from the objective value
    option_help: ClassVar[Mapping[str, str]] = {"workdir": "folder for NNI's log (default: nni/ in the run directory)"}

    def __init__(self, space: SearchSpace, problem: Problem | None = None, seed: int = 0,
                 workdir: str | None = None, **options: Any) -> None:
        self._session: _Session | None = None
        super().__init__(space, problem, seed)
        if self.single_objective and len(self.problem.objectives) > 1:
            raise ValueError(
                f"NNI's {self.nni_name} optimises one objective, got "
                f"{len(self.problem.objectives)}; use strategy=evolution or optuna for several"
            )
        load_nni(self.name)
        # The strategy's options over their defaults (make_strategy has checked names and types).
        self.opts = {opt: default for opt, default, _ in self.options() if opt != "workdir"}
        self.opts.update(options)
        self.workdir = Path(workdir) if workdir else None
        self.build(self.opts, seed)  # NNI's own checks of the options, before anything runs
        self._new_session()

    def _new_session(self) -> None:
        old = self._session
        seen, rejected = (old.seen, old.rejected) if old is not None else (set(), 0)
        if old is not None:
            old.close()
        # The factory must not hold the strategy (see _Session).
        make = functools.partial(type(self).build, dict(self.opts), self.seed)
        self._session = _Session(self.name, self.space, self.problem, self.seed, make, self.workdir)
        self._session.seen, self._session.rejected = seen, rejected
        # Dropping the strategy ends NNI's thread; at interpreter exit a waiting daemon thread is
        # left alone (waking it then would run NNI and torch code during shutdown).
        weakref.finalize(self, self._session.close).atexit = False

    @classmethod
    def build(cls, opts: Mapping[str, Any], seed: int) -> Any:
        """A fresh NNI strategy with these options and seed."""
        raise NotImplementedError

    # The base class keeps ``seen``/``rejected`` on the strategy; here they live in the session,
    # which NNI's thread updates.
    @property
    def seen(self) -> set[str]:  # type: ignore[override]
        return self._session.seen if self._session is not None else set()

    @seen.setter
    def seen(self, value: set[str]) -> None:
        if self._session is not None:
            self._session.seen = set(value)

    @property
    def rejected(self) -> int:  # type: ignore[override]
        return self._session.rejected if self._session is not None else 0

    @rejected.setter
    def rejected(self, value: int) -> None:
        if self._session is not None:
            self._session.rejected = int(value)

    def ask(self, n: int = 1) -> list[Any]:
        if n < 1:
            return []
        arch = self._session.ask()
        return [] if arch is None else [arch]

    def tell(self, arch: Any, metrics: Mapping[str, Any]) -> None:
        told = {k: v for k, v in dict(metrics).items() if isinstance(v, (int, float, str, bool)) or v is None}
        self._session.tell(self.space.key(arch), told)

    def close(self) -> None:
        """Stop NNI's thread (also done when the strategy is garbage-collected)."""
        if self._session is not None:
            self._session.close(wait=10.0)

    def state_dict(self) -> dict[str, Any]:
        session = self._session
        return {
            **self._base_state(),
            "told": [[key, told] for key, told in session.memory.items()],
            "proposals": session.proposals,
            "answered": session.answered,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._new_session()  # NNI starts afresh and replays from the memory
        self._load_base_state(state)
        session = self._session
        session.memory = {str(key): dict(told) for key, told in state["told"]}
        session.seen |= set(session.memory)
