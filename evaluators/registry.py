"""Evaluators by name, and any Python callable ``arch -> dict`` as an evaluator.

``EVALUATORS`` maps a name to a factory: a callable taking the evaluator's options as keywords, or
a ``"module:attribute"`` string imported on first use (so listing names imports no torch). Another
module adds an evaluator with ``register("proxy", "evaluators.proxy:ProxyEvaluator")``.

A factory whose signature has a ``data`` parameter receives the run's data group
(``{"name": "digits", "root": ...}``); its other keyword parameters are the evaluator's options
(``evaluator.path=...`` on the command line), checked by name and typed by their defaults.
"""
from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from evaluators.base import Reporter
from search_spaces.errors import ConfigError, NasError, describe_choices, unknown

Factory = Callable[..., Any]


def _cost(num_classes: int = 1000) -> CostEvaluator:
    return CostEvaluator(num_classes)


EVALUATORS: dict[str, Factory | str] = {
    "proxy": "evaluators.proxy:ProxyEvaluator",
    "zero_cost": "evaluators.zero_cost:ZeroCostEvaluator",
    "nasbench_macro": "evaluators.tabular:NasBenchMacro",
    "supernet": "evaluators.supernet:SupernetEvaluator",
    "cost": _cost,
}


def register(name: str, factory: Factory | str) -> None:
    """Add (or replace) an evaluator: a factory or a lazy ``"module:attribute"`` reference."""
    EVALUATORS[name] = factory


def evaluator_names() -> list[str]:
    return sorted(EVALUATORS)


def factory(name: str) -> Factory:
    """The factory registered as ``name`` (importing it if lazy); unknown names with close matches."""
    if name not in EVALUATORS:
        raise unknown("evaluator", name, evaluator_names())
    entry = EVALUATORS[name]
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = getattr(importlib.import_module(module), attr)
        EVALUATORS[name] = entry
    return entry


@dataclass(frozen=True)
class Option:
    """One option of an evaluator factory: its default (``None`` when required or untyped)."""

    name: str
    default: Any
    required: bool


def evaluator_options(name: str) -> tuple[list[Option], bool, bool]:
    """(options, takes_data, open): the factory's keyword parameters; ``open`` when it has **kw."""
    fn = factory(name)
    params = inspect.signature(fn).parameters.values()
    options, takes_data, open_ = [], False, False
    for p in params:
        if p.kind is p.VAR_KEYWORD:
            open_ = True
        elif p.kind in (p.VAR_POSITIONAL, p.POSITIONAL_ONLY):
            continue
        elif p.name == "data":
            takes_data = True
        else:
            required = p.default is p.empty
            options.append(Option(p.name, None if required else p.default, required))
    return options, takes_data, open_


def make_evaluator(name: str, data: Mapping[str, Any] | None = None, **options: Any) -> Any:
    """The evaluator ``name`` built with ``options`` (and ``data`` when it takes data)."""
    fn = factory(name)
    known, takes_data, open_ = evaluator_options(name)
    names = [o.name for o in known]
    for key in options:
        if key not in names and not open_:
            raise ConfigError(describe_choices(f"option for evaluator {name}:", key, names))
    missing = [o.name for o in known if o.required and o.name not in options]
    if missing:
        raise ConfigError(f"evaluator {name}: missing option {missing[0]} (evaluator.{missing[0]}=...)")
    if takes_data:
        options["data"] = dict(data or {})
    try:
        evaluator = fn(**options)
    except NasError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"evaluator {name}: {exc}") from None
    if not getattr(evaluator, "name", None):
        return FunctionEvaluator(evaluator, name)
    return _with_repeat(evaluator)


class FunctionEvaluator:
    """A plain callable ``arch -> dict`` as an Evaluator; it gets the reporter when it has a
    parameter named ``report``, and the repeat number when it has one named ``repeat``.

    A function without ``repeat`` is taken to give the same result every time (``noisy`` is
    False): a run evaluates each architecture with it once.
    """

    def __init__(self, fn: Callable[..., Any], name: str | None = None) -> None:
        if not callable(fn):
            raise ConfigError(f"an evaluator must be a name or a callable, got {type(fn).__name__}")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", None) or type(fn).__name__
        self._takes_report = _takes_report(fn)
        self.noisy = _takes(fn, "repeat")

    def __call__(self, arch: Any, report: Reporter | None = None, repeat: int = 0) -> Any:
        kwargs = {"repeat": repeat} if self.noisy else {}
        if self._takes_report:
            return self.fn(arch, report if report is not None else _ignore, **kwargs)
        return self.fn(arch, **kwargs)

    def __repr__(self) -> str:
        return f"FunctionEvaluator({self.name!r})"


def _ignore(step: int, metrics: dict[str, float]) -> None:
    """The reporter a user function gets when nothing listens (it may always call it)."""


def _takes(fn: Callable[..., Any], name: str) -> bool:
    """Whether ``fn`` accepts the keyword ``name`` (by name or through ``**kwargs``)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name and p.kind is not p.POSITIONAL_ONLY or p.kind is p.VAR_KEYWORD
               for p in params)


class _IgnoresRepeat:
    """An evaluator object whose ``__call__`` has no ``repeat``: called without it, never repeated."""

    noisy = False

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "inner":  # unpickling (Ray) looks before inner is set
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __call__(self, arch: Any, report: Reporter | None = None, repeat: int = 0) -> Any:
        return self.inner(arch, report)

    def __repr__(self) -> str:
        return repr(self.inner)


def _with_repeat(evaluator: Any) -> Any:
    """``evaluator`` if it takes ``repeat`` (with ``noisy`` defaulting to True), else an adapter."""
    if not _takes(evaluator, "repeat"):
        return _IgnoresRepeat(evaluator)
    if not isinstance(getattr(evaluator, "noisy", None), bool):
        evaluator.noisy = True
    return evaluator


def _takes_report(fn: Callable[..., Any]) -> bool:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    # Only an explicit ``report`` parameter (or *args): a second parameter with another name is
    # the user's own option, not a place to put our reporter.
    return any(p.name == "report" or p.kind is p.VAR_POSITIONAL for p in params)


def as_evaluator(evaluator: Any, **options: Any) -> Any:
    """A name (built from the registry with ``options``), an Evaluator, or any callable."""
    if isinstance(evaluator, str):
        return make_evaluator(evaluator, **options)
    if options:
        raise ConfigError("evaluator options apply only to an evaluator given by name")
    if isinstance(evaluator, (FunctionEvaluator, _IgnoresRepeat)):
        return evaluator
    if getattr(evaluator, "name", None) and callable(evaluator):
        return _with_repeat(evaluator)
    return FunctionEvaluator(evaluator)


class CostEvaluator:
    """Parameters and MACs of an Architecture from the analytic cost model (no training)."""

    name = "cost"
    default_objectives = ("params:min",)
    noisy = False

    def __init__(self, num_classes: int = 1000) -> None:
        self.num_classes = num_classes

    def __call__(self, arch: Any, report: Reporter | None = None, repeat: int = 0) -> dict[str, float]:
        try:
            from search_spaces.cost import cost
        except ImportError as exc:  # the analytic model may be absent in a partial checkout
            raise NasError(f"evaluator cost: the cost model is unavailable ({exc})") from None
        c = cost(arch, self.num_classes)
        return {"params": c.params, "macs": c.macs}
