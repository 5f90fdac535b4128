"""Evaluators by name, and any Python callable ``arch -> dict`` as an evaluator.

``EVALUATORS`` (a `search_spaces.registries.Registry`) maps a name to a factory: a callable taking
the evaluator's options as keywords, or a ``"module:attribute"`` string imported on first use (so
listing names imports no torch). Another module adds an evaluator with
``register("mine", "mypackage.evaluators:MyEvaluator")`` (or the class itself); a name is never
replaced.

A factory whose signature has a ``data`` parameter receives the run's data group
(``{"name": "digits", "root": ...}``); its other keyword parameters are the evaluator's options
(``evaluator.path=...`` on the command line), read once from the signature, checked by name and
typed by their defaults.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from evaluators.base import Evaluator, Reporter, Wrapper
from search_spaces.checks import check_int, fits
from search_spaces.cost import cost
from search_spaces.errors import ConfigError, NasError, describe_choices
from search_spaces.registries import Option, Options, Registry

Factory = Callable[..., Any]

EVALUATORS: Registry[Factory] = Registry("evaluator", reserved=("data",), lazy=True)


def register(name: str, factory: Factory | str) -> None:
    """Add an evaluator: a factory or a lazy ``"module:attribute"`` reference (a new name only)."""
    EVALUATORS.register(name, factory)


def evaluator_names() -> list[str]:
    return sorted(EVALUATORS)


def factory(name: str) -> Factory:
    """The factory registered as ``name`` (importing it if lazy); unknown names with close matches."""
    return EVALUATORS[name]


def evaluator_options(name: str) -> tuple[list[Option], bool, bool]:
    """(options, takes_data, open): the factory's keyword parameters; ``open`` when it has **kw."""
    options: Options = EVALUATORS.options(name)
    return list(options.options), options.takes("data"), options.open


def make_evaluator(name: str, data: Mapping[str, Any] | None = None, **options: Any) -> Evaluator:
    """The evaluator ``name`` built with ``options`` (and ``data`` when it takes data)."""
    fn = factory(name)
    known, takes_data, open_ = evaluator_options(name)
    names = [o.name for o in known]
    for key in options:
        if key not in names and not open_:
            raise ConfigError(describe_choices(f"option for evaluator {name}:", key, names))
    for option in known:  # typed by its default, as on the command line (Python calls are not parsed)
        value = options.get(option.name)
        if option.name in options and value is not None and not fits(value, option.default):
            raise ConfigError(f"evaluator.{option.name}: expected {type(option.default).__name__} for evaluator "
                              f"{name}, got {value!r}")
    # A run's config holds every option, a required one as None (its default) until it is given.
    missing = [o.name for o in known if o.required and options.get(o.name) is None]
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
    if not getattr(evaluator, "name", None):  # a factory that returns a plain function
        return FunctionEvaluator(evaluator, name)
    return _declared(evaluator)


class FunctionEvaluator(Evaluator):
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


class _Adapted(Wrapper):
    """A user's evaluator object that does not derive from `Evaluator`, or whose ``__call__`` has
    no ``repeat``: its own name and hooks where it states them, the declared defaults where not.
    Without ``repeat`` it is called without one and never repeated (``noisy`` is False)."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.takes_repeat = _takes(inner, "repeat")
        if not self.takes_repeat:
            self.noisy = False
        elif not isinstance(self.noisy, bool):
            self.noisy = True

    def __call__(self, arch: Any, report: Reporter | None = None, repeat: int = 0) -> Any:
        if self.takes_repeat:
            return self.inner(arch, report, repeat=repeat)
        return self.inner(arch, report)


def _declared(evaluator: Any) -> Evaluator:
    """``evaluator`` if it derives from `Evaluator` and takes ``repeat``, else adapted to it."""
    if isinstance(evaluator, Evaluator) and _takes(evaluator, "repeat"):
        return evaluator
    return _Adapted(evaluator)


def _takes_report(fn: Callable[..., Any]) -> bool:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    # Only an explicit ``report`` parameter (or *args): a second parameter with another name is
    # the user's own option, not a place to put our reporter.
    return any(p.name == "report" or p.kind is p.VAR_POSITIONAL for p in params)


def as_evaluator(evaluator: Any, **options: Any) -> Evaluator:
    """A name (built from the registry with ``options``), an Evaluator, or any callable; what it
    returns declares every hook of `Evaluator`, so a run reads them as plain attributes."""
    if isinstance(evaluator, str):
        return make_evaluator(evaluator, **options)
    if options:
        raise ConfigError("evaluator options apply only to an evaluator given by name")
    if isinstance(evaluator, Evaluator):
        return _declared(evaluator)
    if getattr(evaluator, "name", None) and callable(evaluator):  # a user's object: adapted once, here
        return _Adapted(evaluator)
    return FunctionEvaluator(evaluator)


class CostEvaluator(Evaluator):
    """Parameters and MACs of an Architecture from the analytic cost model (no training)."""

    name = "cost"
    default_objectives = ("params:min",)
    noisy = False

    def __init__(self, num_classes: int = 1000) -> None:
        check_int("num_classes", num_classes, 1)  # the head's width: the run's checks compute with it
        self.num_classes = num_classes

    def __call__(self, arch: Any, report: Reporter | None = None, repeat: int = 0) -> dict[str, float]:
        c = cost(arch, self.num_classes)
        return {"params": c.params, "macs": c.macs}


# The built-in evaluators; the lazy ones import torch only when made.
for _name, _factory in (
    ("proxy", "evaluators.proxy:ProxyEvaluator"),
    ("zero_cost", "evaluators.zero_cost:ZeroCostEvaluator"),
    ("nasbench_macro", "evaluators.tabular:NasBenchMacro"),
    ("supernet", "evaluators.supernet:SupernetEvaluator"),
    ("cost", CostEvaluator),
):
    register(_name, _factory)
