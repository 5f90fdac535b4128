"""Search strategies speaking ask/tell, and the registry that makes them by name."""
from __future__ import annotations

from typing import Any

from nas.strategies.base import Objective, Problem, Strategy
from nas.strategies.darts import DartsStrategy
from nas.strategies.evolution import RegularizedEvolution
from nas.strategies.nni_strategies import NNI_STRATEGIES
from nas.strategies.optuna_sampler import OptunaStrategy
from nas.strategies.random_search import RandomSearch
from search_spaces.errors import ConfigError, describe_choices, unknown
from search_spaces.space import SearchSpace

# Strategies that search any space through ask/tell alone; DARTS also needs a supernet (a YAML
# space) and training data, and proposes only once its supernet is trained.
ASK_TELL: dict[str, type[Strategy]] = {cls.name: cls for cls in (RandomSearch, RegularizedEvolution, OptunaStrategy)}
# NNI's strategies (strategy=nni.TPE...) need the optional extra: pip install 'nas[nni]'. They
# speak ask/tell too; their tests (tests/test_nni.py) run where NNI is installed.
STRATEGIES: dict[str, type[Strategy]] = {
    **ASK_TELL, DartsStrategy.name: DartsStrategy, **{cls.name: cls for cls in NNI_STRATEGIES},
}


def make_strategy(
    name: str, space: SearchSpace, problem: Problem | None = None, seed: int = 0, **options: Any
) -> Strategy:
    """A strategy by name, with its options checked (unknown names and types are one-line errors)."""
    if name not in STRATEGIES:
        raise unknown("strategy", name, sorted(STRATEGIES))
    cls = STRATEGIES[name]
    known = {opt: default for opt, default, _ in cls.options()}
    for key, value in options.items():
        if key not in known:
            raise ConfigError(describe_choices(f"option for strategy {name}:", key, known))
        default = known[key]
        if default is not None and not _fits(value, default):
            raise ConfigError(
                f"{key}: expected {type(default).__name__} for strategy {name}, got {value!r}"
            )
    try:
        return cls(space, problem, seed, **options)
    except ValueError as exc:
        raise ConfigError(f"strategy {name}: {exc}") from None


def _fits(value: Any, default: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, type(default))


def strategy_options(name: str) -> list[tuple[str, Any, str]]:
    return list(STRATEGIES[name].options())


__all__ = ["STRATEGIES", "Objective", "Problem", "Strategy", "make_strategy", "strategy_options"]
