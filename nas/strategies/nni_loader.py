"""NNI imported once, quietly, with the few subclasses the bridge needs; a one-line error naming the
extra when it is missing."""
from __future__ import annotations

import contextlib
import io
import logging
import warnings
from typing import Any

from search_spaces.errors import ConfigError

EXTRA = "pip install 'nas[nni]'"
_NNI: dict[str, Any] = {}  # the NNI names the bridge uses, imported once


def load_nni(strategy: str) -> dict[str, Any]:
    """NNI's modules, imported quietly (NNI warns about torch versions it does not know and logs to
    stdout by default); a one-line ConfigError naming the extra when NNI is missing or broken."""
    if _NNI:
        return _NNI
    try:
        # NNI warns about torch versions it does not know; the gym that tianshou brings (for
        # PolicyBasedRL) prints a notice on import: neither concerns a nas user.
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            import nni
            from nni.nas import strategy as nni_strategy
            from nni.nas.evaluator import FunctionalEvaluator
            from nni.nas.execution import SequentialExecutionEngine
            from nni.nas.execution.event import FinalMetricEvent, TrainingEndEvent
            from nni.nas.nn.pytorch import ModelSpace
            from nni.nas.space import ModelStatus, SimplifiedModelSpace
            from nni.runtime.log import silence_stdout
    except ImportError as exc:
        missing = getattr(exc, "name", None) or ""
        cause = " ".join(str(exc).split())
        if missing == "nni" or missing.startswith("nni."):
            raise ConfigError(f"strategy {strategy} needs NNI, which is not installed: {EXTRA}") from None
        raise ConfigError(f"strategy {strategy}: NNI does not import ({cause}); reinstall it with {EXTRA}") from None
    silence_stdout()  # NNI's records go to the run's nni.log, not to the terminal
    logging.getLogger("nni").propagate = False
    logging.getLogger("nni").addHandler(logging.NullHandler())  # no "last resort" printing either

    class ChoicesSpace(ModelSpace):
        """A model space holding one ``nni.choice`` over value indices per dimension."""

        def __init__(self, dims: list[tuple[str, int]]) -> None:
            super().__init__()
            for label, size in dims:
                self.add_mutable(nni.choice(label, list(range(size))))

    class SampleEvaluator(FunctionalEvaluator):
        """A functional evaluator whose function receives the sample (label -> value index), not an
        instantiated network (the space's own ``from_choices`` builds the member), and returns the
        final metric, or None."""

        def _execute(self, model: Any) -> Any:
            return self.evaluate(model.sample)

    class BridgeEngine(SequentialExecutionEngine):
        """NNI's sequential engine, with two changes: its budget ends when the bridge is closed (so
        NNI's loop ends as it does when a budget runs out), and
        a model's final metric is the evaluator's return value, dispatched to this engine, instead
        of going through NNI's process-wide trial channel (which NNI's threads of other bridges in
        the same process, e.g. one being closed, would otherwise swap under this one)."""

        def __init__(self, session: Any) -> None:
            super().__init__()
            self.session = session

        def budget_available(self) -> bool:
            return not self.session.closed and super().budget_available()

        def _run_single_model(self, model: Any) -> None:
            model.status = ModelStatus.Training
            status = ModelStatus.Failed
            try:
                value = model.execute()
                if value is not None:
                    self.dispatch_model_event(FinalMetricEvent(model, value))
                status = ModelStatus.Trained
            except NniTrialFailed:
                pass  # a failed trial is an outcome: NNI's strategies skip models without a metric
            except NniClosed:
                status = ModelStatus.Interrupted  # the budget is now over: NNI's loop ends
            finally:
                self.dispatch_model_event(TrainingEndEvent(model, status))

    class FastTPE(nni_strategy.TPE):
        """NNI's TPE strategy without the one-second pause its loop takes after every model (it
        polls a busy engine; the sequential engine has finished the model when submit returns)."""

        def _run(self) -> None:
            space = {label: m.as_legacy_dict() for label, m in self.model_space.simplify().items()}
            with self._thread_lock:
                self.tuner.update_search_space(space)
            while self.engine.budget_available():
                with self._thread_lock:
                    try:
                        param = self.tuner.generate_parameters(self._model_count)
                    except nni.NoMoreTrialError:
                        return
                    model = self.model_space.freeze(param)
                    self._model_to_id[model] = self._model_count
                    self._model_count += 1
                self.engine.submit_models(model)

    class BridgeRL(nni_strategy.PolicyBasedRL):
        """NNI's PolicyBasedRL, which skips the policy update it makes on its way out once the
        bridge is closed (the run has ended: that update would only cost time)."""

        def _update_policy(self) -> None:
            if not self.engine.session.closed:
                super()._update_policy()

    _NNI.update(
        nni=nni, strategy=nni_strategy, ChoicesSpace=ChoicesSpace, SampleEvaluator=SampleEvaluator,
        SimplifiedModelSpace=SimplifiedModelSpace, BridgeEngine=BridgeEngine, FastTPE=FastTPE,
        BridgeRL=BridgeRL,
    )
    return _NNI


class NniClosed(Exception):
    """Raised in NNI's thread when the bridge is closed: ends NNI's loop."""


class NniTrialFailed(Exception):
    """Raised in the evaluator function for a trial without a usable objective: NNI marks it failed."""
