"""Search strategies speaking ask/tell, and the registry that makes them by name."""
from __future__ import annotations

from typing import Any

from nas.strategies.base import Objective, Problem, Strategy
from nas.strategies.darts import DartsStrategy
from nas.strategies.evolution import RegularizedEvolution
from nas.strategies.nni_strategies import NNI_STRATEGIES
from nas.strategies.optuna_sampler import OptunaStrategy
from nas.strategies.random_search import RandomSearch
from search_spaces.checks import fits
from search_spaces.errors import ConfigError, describe_choices
from search_spaces.registries import Option, Options, Registry
from search_spaces.space import SearchSpace


def _options(cls: type[Strategy]) -> Options:
    return Options(tuple(Option(name, default) for name, default, _ in cls.options()))


def _name(cls: type[Strategy]) -> str:
    """The name a strategy is registered under (``strategy=NAME``): a Strategy subclass's own."""
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise TypeError(f"strategy: {cls!r} is not a Strategy subclass")
    name = getattr(cls, "name", None)  # declared, but a subclass may forget to set it
    if not isinstance(name, str) or not name:
        raise TypeError(f"strategy: {cls.__name__} has no name")
    return name


# Every strategy by name (strategy=NAME); its options are its class's (``Strategy.options``).
STRATEGIES: Registry[type[Strategy]] = Registry("strategy", named=_name, options=_options)
# Strategies that search any space through ask/tell alone: the contract tests
# (tests/nas/strategies/test_strategies.py) run each of them.
ASK_TELL: Registry[type[Strategy]] = Registry("ask/tell strategy", field="strategy", named=_name, options=_options)


def register(cls: type[Strategy], *, ask_tell: bool = True) -> type[Strategy]:
    """Make a `Strategy` subclass available as ``strategy=<cls.name>`` (also a class decorator).
    ``ask_tell=False`` for one that needs more than ask/tell (DARTS trains a supernet first) or an
    optional extra (NNI's, tested in tests/nas/strategies/test_nni.py where NNI is installed)."""
    STRATEGIES.add(cls)
    if ask_tell:
        ASK_TELL.add(cls)
    return cls


for _cls in (RandomSearch, RegularizedEvolution, OptunaStrategy):
    register(_cls)
register(DartsStrategy, ask_tell=False)
for _cls in NNI_STRATEGIES:
    register(_cls, ask_tell=False)


def make_strategy(
    name: str, space: SearchSpace, problem: Problem | None = None, seed: int = 0, **options: Any
) -> Strategy:
    """A strategy by name, with its options checked (unknown names and types are one-line errors)."""
    cls = STRATEGIES[name]
    known = STRATEGIES.options(name).defaults
    for key, value in options.items():
        if key not in known:
            raise ConfigError(describe_choices(f"option for strategy {name}:", key, known))
        default = known[key]
        if not fits(value, default):
            raise ConfigError(
                f"{key}: expected {type(default).__name__} for strategy {name}, got {value!r}"
            )
    try:
        return cls(space, problem, seed, **options)
    except ValueError as exc:
        raise ConfigError(f"strategy {name}: {exc}") from None


def strategy_options(name: str) -> list[tuple[str, Any, str]]:
    """(option, default, help) of strategy ``name``, for listings."""
    return list(STRATEGIES[name].options())


__all__ = [
    "ASK_TELL", "STRATEGIES", "Objective", "Problem", "Strategy", "make_strategy", "register", "strategy_options",
]
