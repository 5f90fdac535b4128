"""The one registry (search_spaces.registries) and the contracts of what it holds: every registered
evaluator declares the Evaluator interface with readable options, every registered dataset is a
complete record whose loader takes exactly its options."""
from __future__ import annotations

import inspect

import pytest

from evaluators.base import DEFAULT_DATA, HOOKS, Evaluator
from evaluators.datasets import DATASETS
from evaluators.datasets.record import STORAGES
from evaluators.latency.runtimes import RUNTIMES
from evaluators.registry import EVALUATORS, as_evaluator, make_evaluator
from nas.strategies import ASK_TELL, STRATEGIES
from search_spaces.errors import NasError, RegistrationError, UnknownNameError
from search_spaces.kinds import KINDS
from search_spaces.registries import Option, Options, Registry, signature_options


def _factory(width: int, depth: int = 3, *, act: str = "relu", data=None, **extra) -> dict:
    return {"width": width, "depth": depth, "act": act, "data": data, **extra}


@pytest.fixture
def things() -> Registry:
    registry: Registry = Registry("thing", reserved=("data",))
    registry.register("wide", _factory)
    registry.register("narrow", lambda depth=1: depth)
    return registry


def test_a_second_entry_of_one_name_is_refused_naming_the_registry_and_the_name(things):
    with pytest.raises(RegistrationError, match="thing 'wide' is registered already") as error:
        things.register("wide", _factory)
    assert isinstance(error.value, NasError) and isinstance(error.value, ValueError)
    assert things["wide"] is _factory  # never replaced
    with pytest.raises(RegistrationError, match="non-empty string"):
        things.register("", _factory)


def test_an_unknown_name_is_one_line_with_close_matches(things):
    with pytest.raises(UnknownNameError) as error:
        things["wdie"]
    assert str(error.value) == "unknown thing 'wdie' (did you mean wide?); allowed: wide, narrow"
    with pytest.raises(UnknownNameError, match="unknown thing"):
        things[["not", "hashable"]]  # a value from a config file
    assert things.get("wdie") is None and "wdie" not in things


def test_options_are_read_from_the_signature_once(things, monkeypatch):
    options = things.options("wide")
    assert options.options == (Option("width", None, required=True), Option("depth", 3), Option("act", "relu"))
    assert options.open and options.takes("data") and options.defaults == {"width": None, "depth": 3, "act": "relu"}
    assert signature_options(lambda a, /, *args, b=1: None).options == (Option("b", 1),)
    monkeypatch.setattr(inspect, "signature", lambda *a, **k: pytest.fail("read twice"))
    assert things.options("wide") is options


def test_the_listing_names_every_entry_with_its_options_in_order(things):
    assert things.listing() == ["wide  width=... depth=3 act='relu'", "narrow  depth=1"]
    assert list(things) == ["wide", "narrow"] and len(things) == 2


def test_a_record_registry_checks_its_entries_and_reads_options_from_the_record():
    def check(name: str, entry: dict) -> None:
        if "root" not in entry:
            raise RegistrationError(f"record {name!r} has no root")

    records: Registry = Registry("record", field="data", check=check,
                                 options=lambda entry: Options.from_defaults(entry))
    records.register("a", {"root": None, "download": False})
    assert records.options("a").defaults == {"root": None, "download": False}
    with pytest.raises(RegistrationError, match="record 'b' has no root"):
        records.register("b", {})
    with pytest.raises(UnknownNameError, match="unknown data 'b'"):
        records["b"]


def test_a_lazy_entry_is_imported_on_first_use_and_scratch_forgets_what_it_added(things):
    lazy: Registry = Registry("lazy", lazy=True)
    lazy.register("path", "pathlib:PurePosixPath")
    assert lazy["path"]("a", "b").as_posix() == "a/b"
    with pytest.raises(RegistrationError, match="expected an entry"):
        things.register("text", "pathlib:PurePosixPath")  # only a lazy registry takes references
    with things.scratch({"narrow": lambda depth=2: depth}):
        things.register("extra", _factory)
        assert things.options("narrow").defaults == {"depth": 2}
    assert "extra" not in things and things.options("narrow").defaults == {"depth": 1}
    with pytest.raises(UnknownNameError), things.scratch({"missing": _factory}):
        pass


def test_every_registry_of_nas_is_one_registry():
    for registry in (KINDS, STRATEGIES, ASK_TELL, EVALUATORS, DATASETS, RUNTIMES):
        assert isinstance(registry, Registry) and registry.names()
        assert all(registry.options(name) is registry.options(name) for name in registry)
        assert len(registry.listing()) == len(registry)


# -- the contracts ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", EVALUATORS.names())
def test_every_registered_evaluator_declares_the_interface(name):
    cls = EVALUATORS[name]
    assert isinstance(cls, type) and issubclass(cls, Evaluator), f"{name}: derive from evaluators.base.Evaluator"
    assert cls.name == name
    assert list(inspect.signature(cls.__call__).parameters)[1:] == ["arch", "report", "repeat"]
    for hook in HOOKS:  # declared, with a value of the declared type
        assert isinstance(getattr(cls, hook), type(getattr(Evaluator, hook))), (name, hook)
    options = EVALUATORS.options(name)
    assert all(isinstance(o, Option) and o.name != "data" for o in options.options)
    parameters = inspect.signature(cls).parameters
    for option in options.options:  # each default as the signature states it, nowhere else
        assert option.required is (parameters[option.name].default is inspect.Parameter.empty)
        assert option.required or option.default == parameters[option.name].default
    assert options.takes("data") == ("data" in parameters)


@pytest.mark.parametrize("name", [n for n in EVALUATORS.names()
                                  if not any(o.required for o in EVALUATORS.options(n).options)])
def test_every_evaluator_made_by_name_answers_the_hooks(name):
    try:
        evaluator = make_evaluator(name, data={**DEFAULT_DATA, "limit": 300})
    except NasError as exc:  # needs a file this machine lacks (NAS-Bench-Macro's table)
        pytest.skip(str(exc))
    assert as_evaluator(evaluator) is evaluator
    assert isinstance(evaluator.noisy, bool) and isinstance(evaluator.trains, bool)
    assert isinstance(evaluator.num_classes, int) and evaluator.num_classes >= 2
    assert all(isinstance(o, str) for o in evaluator.default_objectives)


def test_a_users_object_is_adapted_to_the_declared_interface():
    class Scores:
        name = "scores"
        num_classes = 10

        def __call__(self, arch, report=None):
            return {"accuracy": 1.0}

    evaluator = as_evaluator(Scores())
    assert isinstance(evaluator, Evaluator) and evaluator.name == "scores"
    assert (evaluator.num_classes, evaluator.trains, evaluator.default_objectives) == (10, False, ())
    assert evaluator.noisy is False  # no repeat: the same answer every time
    assert evaluator("x", repeat=2) == {"accuracy": 1.0}


@pytest.mark.parametrize("name", DATASETS.names())
def test_every_registered_dataset_is_a_complete_record_whose_loader_takes_its_options(name):
    spec = DATASETS[name]
    assert spec.name == name and spec.description and isinstance(spec.how_to_get, str)
    assert DATASETS.options(name).defaults == dict(spec.options)
    # The options a user sets (data.root, data.download) are exactly what the loader takes.
    assert set(inspect.signature(spec.load).parameters) == set(spec.options)
    assert spec.storages and set(spec.storages) <= set(STORAGES)
    assert len(spec.shape) == 3 and all(isinstance(n, int) and n > 0 for n in spec.shape)
    assert spec.num_classes is None or spec.num_classes >= 2
    assert spec.images is None or spec.images > 0
    assert isinstance(spec.summary, str) and spec.summary
