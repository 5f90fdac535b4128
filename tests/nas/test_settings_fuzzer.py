"""The settings fuzzer (issue 37): random ``nas run`` command lines and ``nas.search(...)`` calls,
drawn from every key a run accepts, with valid, boundary and nonsense values.

Every case ends, within ``CASE_LIMIT_S``, in a finished run (exit 0, or 3 when it found no feasible
candidate) or in one line on stderr with exit code 2 (in Python: a ``NasError`` with a one-line
message); never a traceback, never a hang. Nothing is written outside ``out=``, a refused case
writes nothing at all, and the run folder and leaderboard already in ``out=`` survive: the run
folder byte for byte (unless the case resumes it), every leaderboard row it held unchanged.

The keys come from the run's own sources at test time (``RUN_DEFAULTS``, the strategies' and
evaluators' options, the data loader's parameters, the keys ``nas run --help`` documents,
``nas.search``'s signature), so a new setting is fuzzed as soon as it exists. Runs stay cheap:
``evaluator=cost``, a budget of 1 to 4, and a stopwatch that reads a network's MACs instead of
timing it. Settings whose valid values cost real work (a training evaluator, DARTS, NNI, Ray, a
zero-cost prescreen) are drawn only with a nonsense value of their own options that must be
refused (the case then has to exit 2).

``pytest tests/nas/test_settings_fuzzer.py`` runs the seeded CI profile; ``pytest -m slow
tests/nas/test_settings_fuzzer.py`` the long one (new random cases on every run).
"""
from __future__ import annotations

import contextlib
import csv
import faulthandler
import hashlib
import inspect
import io
import logging
import math
import os
import re
import shutil
import signal
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nas
import nas.report.plots
from evaluators.data import load_dataset
from evaluators.latency.measure import Measurement, Measurer
from evaluators.registry import EVALUATORS, evaluator_options
from evaluators.zero_cost import PROXIES
from nas.backends import BACKENDS
from nas.cli.commands import NOTHING_FOUND, main
from nas.config import flat_keys
from nas.run.problem import CONSTRAINT_SHORTCUTS, POSITIVE_COSTS
from nas.run.settings import help_text, named_groups, run_defaults
from nas.strategies import STRATEGIES
from search_spaces.cost import cost
from search_spaces.errors import NasError
from search_spaces.registry import space_names
from tests.spaces import TINY

CI_CASES = 300  # command lines in the default run (CI)
CI_API_CASES = 100  # nas.search calls in the default run
SLOW_CASES = 3000  # each, with pytest -m slow
# A case ends well inside this; past it the watchdog fails the case, naming it.
CASE_LIMIT_S = 60

# Members whose valid use is cheap; every other member of these groups (those registered later
# included) is drawn only with a nonsense option that must be refused.
CHEAP = {"strategy": {"random", "evolution", "optuna"}, "evaluator": {"cost"}, "backend": {"local"},
         "prescreen": set()}
# Markers of a Python exception's own text passed through as the error line: the line should
# name the setting and what is allowed instead.
INTERNAL = ("Traceback", "NoneType", "object is not", "object has no attribute", "positional argument",
            "unexpected keyword", "not subscriptable", "is not iterable", "unsupported operand",
            "invalid literal for", "could not convert", "ZeroDivisionError", "TypeError", "ValueError",
            "KeyError", "IndexError", "AttributeError", "AssertionError")


# -- the keys a run accepts, from the run's own sources --------------------------------------------
def _lookup(tree: Mapping[str, Any], dotted: str) -> Any:
    node: Any = tree
    for part in dotted.split("."):
        node = node[part]
    return node


def _help_keys() -> list[str]:
    """The keys ``nas run --help`` lists in its settings column (``config=FILE`` among them)."""
    keys = []
    for line in help_text().splitlines():
        if re.match(r"  [a-z]", line):
            keys += re.findall(r"(?<![\w.])([a-z][a-z_.]*)=", re.split(r"\s{2,}", line.strip())[0])
    return keys


def run_keys() -> dict[str, tuple[Any, ...]]:
    """Every key ``nas run`` accepts -> the defaults it has wherever it is defined."""
    keys: dict[str, tuple[Any, ...]] = {}

    def add(key: str, default: Any) -> None:
        keys[key] = (*keys.get(key, ()), default)

    defaults = run_defaults()
    for key in flat_keys(defaults):
        add(key, _lookup(defaults, key))
    for cls in STRATEGIES.values():
        for option, default, _ in cls.options():
            add(f"strategy.{option}", default)
            add(option, default)  # written bare: population=50
    for name in EVALUATORS:
        for option in evaluator_options(name)[0]:
            add(f"evaluator.{option.name}", option.default)
            add(f"{name}.{option.name}", option.default)  # supernet.ckpt=PATH
    for parameter in inspect.signature(load_dataset).parameters.values():
        add(f"data.{parameter.name}", None if parameter.default is parameter.empty else parameter.default)
    for metric in sorted({*CONSTRAINT_SHORTCUTS.values(), *POSITIVE_COSTS, "accuracy"}):
        add(f"constraints.{metric}", None)
    for key in _help_keys():
        keys.setdefault(key, (None,))
    return keys


KEYS = run_keys()


def typed(key: str) -> type | None:
    """The one type every default of ``key`` has (bool, int, float or str), else None: a value of
    another type is refused by the strict parser."""
    kinds = {type(d) for d in KEYS.get(key, (None,))}
    if len(kinds) != 1:
        return None
    kind = kinds.pop()
    return kind if kind in (bool, int, float, str) else None


def canonical(key: str) -> str:
    """One spelling per setting (``strategy=x`` is ``strategy.name=x``; ``population=5`` is
    ``strategy.population=5``; ``cost.num_classes`` is ``evaluator.num_classes``)."""
    if key in named_groups():
        return f"{key}.name"
    head, _, rest = key.partition(".")
    if rest and head in EVALUATORS and head not in named_groups():
        return f"evaluator.{rest}"
    if "." not in key and f"strategy.{key}" in KEYS:
        return f"strategy.{key}"
    return key


# -- values ------------------------------------------------------------------------------------------
# Placeholders replaced by each case's own paths.
OUT, INPUTS, ROOT = "@OUT@", "@INPUTS@", "@ROOT@"
KEPT = "kept"  # the run already in out=

NONSENSE = [
    "", " ", "[", "]", "{", "[1,2", "{a: 1}", "[[]]", "[a, [b]]", "null", "~", "true", "no", "-1", "0",
    "1e999", "-inf", "nan", "0x1F", "9" * 40, "'quoted'", "''", '"', "a=b", "${oc.env:HOME}", "${nope}",
    "${now:%Y}", "é", "x" * 300, f"{INPUTS}/{'x' * 300}", "../../outside", "/", "~/nas-fuzz", "a b", "\\", "%s",
    "*", "line\nbreak",
    f"{INPUTS}/plain.txt", f"{INPUTS}/missing",
]
WRONG_TYPE = {  # values the strict parser refuses for a key typed by its default
    bool: ["maybe", "1", "[true]", "{a: 1}", "2.5"],
    int: ["many", "1.5", "true", "[1]", "{a: 1}", "1e3"],
    float: ["lots", "true", "[0.5]", "{a: 1}"],
    str: ["[a]", "{a: 1}", "[]"],
}
BY_TYPE = {
    bool: ["true", "false"],
    int: ["0", "1", "2", "3", "-1", "10000", str(2**63)],
    float: ["0", "0.0", "0.5", "1", "1.0", "-0.5", "1e-9", "1e30", "nan", ".nan", "inf", "-inf"],
    str: ["none", "auto", "x", "cpu", "tpe", "median"],
}
LONG = "x" * 300  # longer than a file name may be
HUGE_KERNEL = "mbconv@224_silu:stem_k3_s2_c32:mb_k99999_c16:head_c1280"
SMALL_ARCH = "mbconv@32_relu:stem_k3_s2_c16:mb_k3_e1_c16:head_c64"
# key -> (plausible values, boundary and odd ones), where the type's pools would be too costly
# or too blunt; a plausible value may still be refused in its case's company.
PINNED: dict[str, tuple[list[str], list[str]]] = {
    # a short run; budget=null leaves only the (tiny) time budget
    "budget": (["1", "2", "3", "4"], ["0", "-1", "null", "ten", "1.5", "true", "[]"]),
    "budget_hours": (["null", "1e-5", "0.0001"], ["0", "-1", "nan", "inf", "-inf", "1h", "true", "[1]"]),
    "out": ([f"{ROOT}/other_out", "null"], ["", "''", f"{INPUTS}/plain.txt", f"{INPUTS}/plain.txt/sub",
                                            "${oc.env:HOME}", "${nope}"]),
    "run_id": (["fresh-1", "007", "a.b_c-d", "null"],
               [KEPT, "", "../x", "a/b", "/abs", ".", "..", "-dash", "x" * 300, "${nope}", "é", "1e3", "true"]),
    "resume": (["false", "true"], []),
    "config": ([f"{OUT}/runs/{KEPT}/config.yaml"],
               [f"{INPUTS}/missing.yaml", INPUTS, f"{INPUTS}/garbage.yaml", f"{INPUTS}/list.yaml",
                f"{INPUTS}/empty.yaml", f"{INPUTS}/plain.txt", f"{INPUTS}/interp.yaml", LONG]),
    "space": ([*space_names(), f"{INPUTS}/tiny.yaml"],
              ["mbconf", f"{INPUTS}/garbage.yaml", f"{INPUTS}/missing.yaml", f"{INPUTS}/list.yaml",
               f"{INPUTS}/empty.yaml", INPUTS, "efficientnet_b0", f"{LONG}.yaml"]),
    "latency.name": (["auto", "none", "measured"], ["table", "learned", "fast"]),
    "latency.profile": (["null"], [f"{INPUTS}/missing", INPUTS, f"{INPUTS}/plain.txt", f"{INPUTS}/badprofile",
                                   LONG]),
    "progress": (["false", "true"], []),
    "quantize": (["none"], ["int8", "fp4"]),
    "baselines": (["auto", "none", "[]", "[resnet18]", "[efficientnet_b0]", f"[{SMALL_ARCH}]"],
                  ["resnet18", "[nope]", f"[{HUGE_KERNEL}]", "[efficientnet_b0,efficientnet_b0]"]),
    "objectives": (["[accuracy]", "[params:min]", "[macs:min]", "[accuracy,params:min]", "[latency_ms:min]",
                    "params:min", "[params:min,macs:min]"],
                   ["mnas", "[mnas]", "[accuracy_int8]", "[accuracy:best]", "[]", "[params:min,params:max]",
                    "[nope]"]),
    "max_latency_ms": (["baseline", "none", "null", "20", "1e9"], ["0.001", "0", "-5", "nan", "inf", "fast"]),
    "max_params": (["null", "3e6", "1e12"], ["1", "1e5", "0", "-1", "nan", "inf", "lots"]),
    "max_macs": (["null", "3e8", "1e15"], ["1", "1e7", "0", "-1", "nan", "inf", "lots"]),
    "seed": (["0", "1", "4294967296", "99999999999999999999"], ["-1", "0.5", "true", "null"]),
    "pruner": (["none", "median", "asha"], ["hyperband"]),
    "select.name": (["race", "halving", "none"], ["best"]),
    # every data setting is refused with evaluator=cost, which trains on no data
    "data.name": (["digits"], ["fashion_mnist", "cifar10", "imagefolder", "mnist"]),
    "latency.device": (["cpu"], ["cuda", "cuda:0", "tpu"]),
    "latency.runtime": (["torch"], ["onnxruntime", "tflite"]),
    # backend=ray starts a cluster: only with a ray setting that must be refused (see poisons)
    "backend": (["local"], ["moon"]),
    # a zero-cost proxy scores every proposal: only with a prescreen_keep that must be refused
    "prescreen": (["none", "null"], ["naswotx"]),
    "strategy.name": (sorted(CHEAP["strategy"]), ["evolutoin", "nni.Nope", "nni."]),
    "evaluator.name": (["cost"], ["nasbench", "python:x"]),
    "strategy.storage": (["null"], ["x", "sqlite://", "none"]),  # a valid URL elsewhere would write outside out=
    "strategy.workdir": (["null"], [f"{INPUTS}/plain.txt"]),
    # proposals tried per ask: thousands under a tight bound are valid and slow
    "strategy.max_tries": (["1", "5", "50", "100"], ["0", "-1"]),
}
for _alias, _key in (("strategy", "strategy.name"), ("evaluator", "evaluator.name"), ("latency", "latency.name"),
                     ("select", "select.name"), ("data", "data.name"), ("storage", "strategy.storage"),
                     ("workdir", "strategy.workdir"), ("max_tries", "strategy.max_tries")):
    PINNED[_alias] = PINNED[_key]


def expensive(group: str) -> list[str]:
    """The members of ``group`` whose valid use costs real work (drawn with a poison only)."""
    members = {"strategy": STRATEGIES, "evaluator": EVALUATORS, "backend": BACKENDS, "prescreen": PROXIES}[group]
    return sorted(m for m in members if m not in CHEAP[group])


def poisons(group: str, member: str) -> list[tuple[str, str]]:
    """Settings that must make a run of ``member`` refuse to start: a value of the wrong type for one
    of its typed options, a negative count (seeds excepted) or a NaN."""
    if group == "backend":
        return [("ray.workers", "0"), ("ray.cpus_per_trial", "0"), ("ray.max_failures", "-2"),
                ("ray.workers", "many")]
    if group == "prescreen":
        return [("prescreen_keep", v) for v in ("0", "-1", "1.5", "nan", "most")]
    if group == "strategy":
        options = [(f"strategy.{o}", d) for o, d, _ in STRATEGIES[member].options()]
    else:
        options = [(f"evaluator.{o.name}", o.default) for o in evaluator_options(member)[0]]
    found = []
    for key, default in options:
        kind = type(default)
        if default is None or kind not in WRONG_TYPE:
            continue
        found += [(key, v) for v in WRONG_TYPE[kind][:2]]
        if kind is int and not key.endswith("seed"):
            found.append((key, "-1"))
        if kind is float:
            found.append((key, ".nan"))  # YAML's NaN ("nan" is text)
    return found or [("budget", "0")]


def value_choices(key: str) -> tuple[list[str], list[str]]:
    """(plausible values, boundary and odd ones) of ``key``."""
    if key in PINNED:
        plausible, odd = PINNED[key]
        return plausible, odd or plausible
    kind = typed(key)
    if kind is not None:
        defaults = [str(d).lower() if isinstance(d, bool) else str(d) for d in KEYS[key]]
        return defaults, BY_TYPE[kind]
    return ["null"], [v for values in BY_TYPE.values() for v in values] + ["[a,b]", "{}"]


@dataclass(frozen=True)
class Case:
    items: tuple[str, ...]  # key=value words after ``nas run``
    must_refuse: str  # why the case has to end with exit code 2 ("" when it may finish)


def run_level_keys() -> list[str]:
    """The keys of every run (``RUN_DEFAULTS`` and ``--help``), and the cost evaluator's options:
    drawn more often than the options of members the case does not choose (which are refused)."""
    keys = {*flat_keys(run_defaults()), *_help_keys()}
    keys |= {k for k in KEYS if k.startswith(("evaluator.", "cost.")) and
             k.partition(".")[2] in {o.name for o in evaluator_options("cost")[0]}}
    return sorted(keys)


RUN_LEVEL = run_level_keys()
MALFORMED = ["budget", "=3", "==", "budget==3", "-v", "--budget=3", "=", " =1", "a.=1", ".a=1",
             "strategy..x=1"]


@st.composite
def cli_cases(draw: st.DrawFn) -> Case:
    chosen: dict[str, tuple[str, str]] = {}  # canonical key -> (key as written, value)
    if draw(st.integers(0, 3)):  # mostly a small space: its runs are the quickest
        chosen["space"] = ("space", f"{INPUTS}/tiny.yaml")
    strategy = draw(st.sampled_from(["", "", *sorted(CHEAP["strategy"])]))
    mine = []
    if strategy:
        chosen["strategy.name"] = (draw(st.sampled_from(["strategy", "strategy.name"])), strategy)
        mine = [k for o, _, _ in STRATEGIES[strategy].options() for k in (o, f"strategy.{o}")]
    likely = st.sampled_from(RUN_LEVEL + mine)
    keys = draw(st.lists(st.one_of(likely, likely, likely, st.sampled_from(sorted(KEYS))), max_size=4))
    for key in keys:
        plausible, odd = value_choices(key)
        kind = typed(key)
        wrong = WRONG_TYPE[kind] if kind is not None and key not in PINNED else odd
        which = draw(st.integers(0, 19))  # a plausible value three times in four
        pool = NONSENSE if which == 0 else wrong if which == 1 else odd if which <= 4 else plausible
        chosen[canonical(key)] = (key, draw(st.sampled_from(pool)))
    # a member whose valid use is expensive, with a setting that must stop it
    tail: list[tuple[str, str]] = []
    why = ""
    group = draw(st.sampled_from([""] * 20 + ["strategy", "evaluator", "backend", "prescreen"]))
    if group:
        member = draw(st.sampled_from(expensive(group)))
        poison = draw(st.sampled_from(poisons(group, member)))
        key = f"{group}.name" if group in named_groups() else group
        chosen.pop(key, None)
        chosen.pop(canonical(poison[0]), None)
        tail = [(key, member), poison]
        why = f"{key}={member} with {poison[0]}={poison[1]}"
    words = [f"{k}={v}" for k, v in [*chosen.values(), *tail]]
    if draw(st.integers(0, 19)) == 0:  # a word that is not key=value at all
        words.append(draw(st.sampled_from(MALFORMED)))
    return Case(tuple(words), why)


def strict_refusal(case: Case) -> str:
    """Why ``case`` must be refused: a poison, a wrong-type value for a typed key, or a negative count
    or NaN for an option of a strategy or evaluator (unless a saved config replaces the defaults
    the types come from)."""
    if case.must_refuse:
        return case.must_refuse
    keys = [w.partition("=")[0] for w in case.items]
    if "config" in keys or "resume" in keys:
        return ""
    for word in case.items:
        key, sep, value = word.partition("=")
        kind = typed(key)
        if not sep or kind is None or key in PINNED:
            continue
        if value in WRONG_TYPE[kind]:
            return f"{key}={value} is not a {kind.__name__}"
        option = canonical(key).startswith(("strategy.", "evaluator.")) and not key.endswith("seed")
        if option and (kind is int and value == "-1" or kind is float and value == ".nan"):
            return f"{key}={value} is no value of a {kind.__name__} option"
    return ""


# -- one case: its folder, its output, its checks ----------------------------------------------------
class CaseTimeout(BaseException):
    """Raised in the case by the watchdog (a BaseException: ``except Exception`` cannot eat it)."""


@contextlib.contextmanager
def watchdog(label: str) -> Iterator[None]:
    """Fail the case after CASE_LIMIT_S; if even that cannot interrupt it (a hang in C), dump every
    thread's stack and stop the process instead of blocking CI."""

    def expire(signum: int, frame: Any) -> None:
        raise CaseTimeout(f"case ran over {CASE_LIMIT_S} s: {label}")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, CASE_LIMIT_S)
    faulthandler.dump_traceback_later(CASE_LIMIT_S * 2, exit=True)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        faulthandler.cancel_dump_traceback_later()
        signal.signal(signal.SIGALRM, previous)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.getMessage()}")


@contextlib.contextmanager
def captured() -> Iterator[tuple[io.StringIO, io.StringIO, list[str]]]:
    """stdout, stderr and what the command line would add to stderr (Python warnings, and
    ``logging`` at WARNING, which ``nas`` sends to stderr)."""
    out, err, extra = io.StringIO(), io.StringIO(), []
    handler = _Records()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(out), \
                contextlib.redirect_stderr(err):
            warnings.simplefilter("always")  # each case is a fresh process on the command line
            for hidden in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
                warnings.simplefilter("ignore", hidden)  # what Python hides outside __main__
            yield out, err, extra
    finally:
        root.removeHandler(handler)
        extra += handler.lines + [f"{w.category.__name__}: {w.message}" for w in caught]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file and folder under ``folder`` -> a digest of its bytes ("dir" for folders)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        name = str(path.relative_to(folder))
        if path.is_symlink() or not path.is_file():
            found[name] = "dir" if path.is_dir() else "other"
        else:
            found[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def leaderboard_rows(out: Path) -> list[dict[str, str]]:
    with open(out / "leaderboard.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@dataclass
class Place:
    """A case's folder: ``cwd/`` (the working directory), ``home/`` ($HOME), ``out/`` (a copy of an
    out folder holding the finished run ``kept``), ``inputs/`` (files the settings name)."""

    root: Path
    before: dict[str, str]
    rows: list[dict[str, str]]

    @property
    def out(self) -> Path:
        return self.root / "out"

    @property
    def kept(self) -> Path:
        return self.out / "runs" / KEPT

    def fill(self, word: str) -> str:
        return word.replace(OUT, str(self.out)).replace(INPUTS, str(self.root / "inputs")).replace(
            ROOT, str(self.root))


def write_inputs(folder: Path) -> None:
    folder.mkdir()
    (folder / "tiny.yaml").write_text(TINY)
    (folder / "plain.txt").write_text("not a folder\n")
    (folder / "garbage.yaml").write_text("name: [unclosed\n  stages: {")
    (folder / "list.yaml").write_text("- 1\n- 2\n")
    (folder / "empty.yaml").write_text("")
    (folder / "badprofile").mkdir()
    (folder / "badprofile" / "fingerprint.json").write_text("{not json")
    (folder / "interp.yaml").write_text("evaluator: {name: cost}\nbudget: 2\nbaselines: ${oc.env:HOME}\n"
                                        "out: ${oc.env:HOME}\n")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """An out folder holding one finished run (``kept``) and its leaderboard rows."""
    root = tmp_path_factory.mktemp("fuzz-pristine")
    out = root / "out"
    with captured():
        code = main(["run", "evaluator=cost", "budget=3", f"out={out}", f"run_id={KEPT}", "progress=false"])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def cheap_runs() -> Iterator[None]:
    """A stopwatch that reads MACs (exact and instant), and no plots (drawn after the results are
    safe, a failure logged and never fatal: nothing this fuzzer checks)."""

    def networks(self: Measurer, archs: Any, num_classes: int = 1000) -> list[Measurement]:
        found = []
        for arch in archs:
            ms = cost(arch, num_classes).macs / 1e6
            found.append(Measurement(ms, ms, ms, ms, 1))
        return found

    def measure_many(self: Measurer, items: Any) -> list[Measurement]:
        found = []
        for module, _ in items:
            ms = sum(p.numel() for p in module.parameters()) / 1e6 + 0.01
            found.append(Measurement(ms, ms, ms, ms, 1))
        return found

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Measurer, "networks", networks)
        patch.setattr(Measurer, "measure_many", measure_many)
        patch.setattr(nas.report.plots, "run_plots", lambda *args, **kwargs: None)
        yield


@contextlib.contextmanager
def place(pristine: Path) -> Iterator[Place]:
    root = Path(tempfile.mkdtemp(prefix="nas-fuzz-"))
    shutil.copytree(pristine, root / "out")
    write_inputs(root / "inputs")
    (root / "cwd").mkdir()
    (root / "home").mkdir()  # $HOME and ~ of the case: a setting that reaches them is caught here
    here, home = os.getcwd(), os.environ.get("HOME")
    os.chdir(root / "cwd")
    os.environ["HOME"] = str(root / "home")
    try:
        yield Place(root, snapshot(root), leaderboard_rows(root / "out"))
    finally:
        os.chdir(here)
        if home is None:
            os.environ.pop("HOME", None)
        else:
            os.environ["HOME"] = home
        shutil.rmtree(root, ignore_errors=True)


def check_files(where: Place, refused: bool, resumed: bool, label: str) -> None:
    """Nothing outside out=; nothing at all when refused; ``kept`` and the leaderboard's rows kept."""
    after = snapshot(where.root)
    # a library's own cache, not a result (onnxruntime keeps a device id there when first imported)
    cache = os.path.join("home", ".cache")
    if refused:
        changed = sorted(k for k in set(after) | set(where.before)
                         if after.get(k) != where.before.get(k) and not k.startswith(cache))
        assert not changed, f"a refused case wrote or changed {changed[:5]}: {label}"
        return
    allowed = ("out", "other_out")
    outside = sorted(k for k in set(after) | set(where.before)
                     if after.get(k) != where.before.get(k) and k.split(os.sep)[0] not in allowed
                     and not k.startswith(cache))
    assert not outside, f"written outside out=: {outside[:5]}: {label}"
    kept = f"out{os.sep}runs{os.sep}{KEPT}"
    if not resumed:
        damaged = sorted(k for k in set(after) | set(where.before) if k.startswith(kept)
                         and not k.endswith(".lock") and after.get(k) != where.before.get(k))
        assert not damaged, f"run {KEPT} was changed: {damaged[:5]}: {label}"
    rows = leaderboard_rows(where.out)
    old = where.rows
    assert [{c: r.get(c) for c in old[0]} for r in rows[: len(old)]] == old, \
        f"the leaderboard lost or changed rows: {label}"


def check_error_line(err: str, extra: list[str], label: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and not extra and err.startswith("error: ") and err.endswith("\n"), \
        f"not one error line: {[*lines, *extra]}: {label}"
    leaked = [m for m in INTERNAL if m in err]
    assert not leaked, f"the error line is a Python exception's text ({leaked[0]}): {err!r}: {label}"


def run_cli_case(case: Case, pristine: Path) -> None:
    with place(pristine) as where:
        argv = ["run", "evaluator=cost", "budget=2", "progress=false", f"out={where.out}",
                *(where.fill(w) for w in case.items)]
        label = "nas " + " ".join(repr(a) if (" " in a or not a) else a for a in argv)
        code: int | None = None
        with watchdog(label), captured() as (out, err, extra):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse's usage errors
                code = exc.code if isinstance(exc.code, int) else 1
            except Exception as exc:  # noqa: BLE001 - what the fuzzer is looking for
                pytest.fail(f"{type(exc).__name__} escaped ({exc}): {label}")
        must = strict_refusal(case)
        assert code in (0, 2, NOTHING_FOUND), f"exit code {code}: {err.getvalue()!r}: {label}"
        if code == 2:
            check_error_line(err.getvalue(), extra, label)
        else:
            assert not must, f"accepted, though {must}: {label}"
            assert "Traceback" not in err.getvalue(), label
            assert re.search(r"(?m)^results: ", out.getvalue()), f"finished without results: {label}"
        resumed = any(w.startswith("resume=") for w in case.items)
        check_files(where, refused=code == 2, resumed=resumed, label=label)


# No example database (nothing written in the repository); the fixtures are set once per module.
FUZZ: dict[str, Any] = {
    "deadline": None, "database": None, "print_blob": True,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
}


@settings(max_examples=CI_CASES, derandomize=True, **FUZZ)
@given(case=cli_cases())
def test_random_command_lines_finish_or_refuse_in_one_line(pristine, cheap_runs, case):
    run_cli_case(case, pristine)


@pytest.mark.slow
@settings(max_examples=SLOW_CASES, **FUZZ)
@given(case=cli_cases())
def test_random_command_lines_long(pristine, cheap_runs, case):
    run_cli_case(case, pristine)


# -- nas.search(...) ----------------------------------------------------------------------------------
def _callable_evaluators() -> list[Callable[..., Any]]:
    def accuracy(arch: Any) -> dict[str, float]:
        return {"accuracy": 0.5}

    def text(arch: Any) -> str:
        return "not a number"

    def fails(arch: Any) -> dict[str, float]:
        raise RuntimeError("evaluator broke")

    def nan(arch: Any) -> float:
        return float("nan")

    return [accuracy, text, fails, nan]


ODD = [None, True, False, 0, 1, -1, 2**64, 0.5, -0.5, float("nan"), float("inf"), "", "x", "none", "auto",
       [], ["x"], {}, {"x": 1}, object(), b"bytes", (1, 2), {1, 2}, Path("nowhere"), 1 + 2j]


SEARCH_ARGUMENTS = {name: p.default for name, p in inspect.signature(nas.search).parameters.items()
                    if p.kind is not p.VAR_KEYWORD}


def api_keys() -> dict[str, Any]:
    """``nas.search``'s keyword arguments and the strategies' options (its ``**options``)."""
    keys = dict(SEARCH_ARGUMENTS)
    for cls in STRATEGIES.values():
        for option, default, _ in cls.options():
            keys.setdefault(option, default)
    return keys


API_KEYS = api_keys()
# keyword -> (plausible values, boundary and odd ones), as PINNED for the command line
API_PINNED: dict[str, tuple[list[Any], list[Any]]] = {
    "budget": ([1, 2, 3, 4], [0, -1, None, "ten", 1.5, True]),
    "budget_hours": ([None, 1e-5], [0, -1, float("nan"), float("inf"), "1h", True]),
    "out": ([None, f"{ROOT}/other_out", Path(f"{ROOT}/other_out")],
            [f"{INPUTS}/plain.txt", f"{INPUTS}/plain.txt/sub", 5, "", " ", True]),
    "run_id": (["fresh-1", None], [KEPT, "", "../x", "a/b", 7, True, "x" * 300]),
    "resume": ([False, True], ["yes", 1]),
    "space": ([*space_names(), f"{INPUTS}/tiny.yaml", Path(f"{INPUTS}/tiny.yaml")],
              ["mbconf", 5, f"{INPUTS}/garbage.yaml", [1]]),
    "strategy": (sorted(CHEAP["strategy"]), ["evolutoin", 5, None]),
    "evaluator": (["cost", *_callable_evaluators()], ["nasbench", None, 5]),
    "evaluator_options": ([None, {}, {"num_classes": 10}], [{"num_classes": 0}, {"nope": 1}, 5, ["x"]]),
    "data": ([None], ["digits", {"name": "digits"}, 5, ["x"], {"name": 5}]),  # cost trains on no data
    "latency": ([None, "none", "measured", "auto", {"name": "none"}],
                [{"name": "measured", "threads": 0}, {"treads": 1}, 5, ["x"], "table"]),
    "ray": ([None, {}], [{"workers": 0}, 5, "x", ["x"]]),
    "backend": (["local"], ["moon", 5, None]),
    "limits": ([None, {}, {"max_params": 1e30}], [{"max_params": 0}, 5, [1], {"max_parms": 1}]),
    "select": ([None, "none", "race", "halving", {"name": "none"}], [{"k": 0}, 5, ["x"], {"nope": 1}]),
    "baselines": (["auto", "none", None, [], ["resnet18"], ("efficientnet_b0",)],
                  [5, [5], "resnet18", [HUGE_KERNEL]]),
    "progress": ([False, None, True, lambda event: None], [5, "yes"]),
    "objectives": ([None, "accuracy", ["params:min"], ["accuracy", "params:min"], "latency_ms:min"],
                   [5, [5], ["accuracy:best"], [], {"accuracy": "max"}]),
    "constraints": ([None, {}, {"params": 1e12}, {"params": 3e6}],
                    [5, {"params": "x"}, [("params", 1)], {5: 1}, {"latency_ms": 0}]),
    "max_params": ([None, 3e6, 1e12], [0, -1, "lots", float("nan")]),
    "max_macs": ([None, 3e8], [0, "lots"]),
    "max_latency_ms": ([None, "baseline", 20], [0.001, 0, -5, "fast", float("inf")]),
    "seed": ([0, 1, 2**32], [-1, 0.5, "0", None, True]),
    "prescreen": ([None, "none"], ["naswotx", 5]),
    "prescreen_keep": ([0.25, 1], [0, -1, 2, "x", None]),
    "pruner": (["none", "median", "asha"], ["hyper", 5, None]),
    "quantize": (["none"], ["int8", "fp4", 5, None]),
    "storage": ([None], ["x", 5]),  # a valid URL elsewhere would write outside out=
    "workdir": ([None], [5, f"{INPUTS}/plain.txt"]),
    "max_tries": ([1, 5, 50, 100], [0, -1, "many"]),  # thousands under a tight bound are valid and slow
}
WRONG_PYTHON = {bool: ["yes", 1], int: ["many", 1.5, True], float: ["lots", True], str: [5, ["x"]]}


def api_poisons(group: str, member: str) -> list[dict[str, Any]]:
    """Keyword arguments that must make ``nas.search`` with ``member`` refuse to start (the command
    line's poisons, as Python values)."""
    if group == "backend":
        return [{"ray": {"workers": 0}}, {"ray": {"cpus_per_trial": 0}}]
    if group == "prescreen":
        return [{"prescreen_keep": v} for v in (0, -1, 1.5, float("nan"), "most")]
    found = []
    for key, text in poisons(group, member):
        if key == "budget":
            found.append({"budget": 0})
            continue
        option = key.partition(".")[2]
        value = {"-1": -1, ".nan": float("nan")}.get(text, text)
        found.append({option: value} if group == "strategy" else {"evaluator_options": {option: value}})
    return found


@dataclass(frozen=True)
class ApiCase:
    kwargs: dict[str, Any]
    must_refuse: str


@st.composite
def api_cases(draw: st.DrawFn) -> ApiCase:
    kwargs: dict[str, Any] = {}
    if draw(st.integers(0, 3)):
        kwargs["space"] = f"{INPUTS}/tiny.yaml"
    strategy = draw(st.sampled_from(["", "", *sorted(CHEAP["strategy"])]))
    mine = []
    if strategy:
        kwargs["strategy"] = strategy
        mine = [o for o, _, _ in STRATEGIES[strategy].options()]
    likely = st.sampled_from(sorted(SEARCH_ARGUMENTS) + mine)
    keys = draw(st.lists(st.one_of(likely, likely, likely, likely, st.sampled_from(sorted(API_KEYS) + ["populaton"])),
                         max_size=4, unique=True))
    for key in keys:
        if key in API_PINNED:
            plausible, odd = API_PINNED[key]
        else:
            default = API_KEYS.get(key)
            plausible = [default]
            odd = ODD + WRONG_PYTHON.get(type(default), [])
        which = draw(st.integers(0, 19))  # a plausible value four times in five
        kwargs[key] = draw(st.sampled_from(odd if which <= 3 else plausible))
    why = ""
    group = draw(st.sampled_from([""] * 20 + ["strategy", "evaluator", "backend", "prescreen"]))
    if group:
        member = draw(st.sampled_from(expensive(group)))
        poison = draw(st.sampled_from(api_poisons(group, member)))
        if group == "evaluator":
            kwargs.pop("evaluator_options", None)
        kwargs.update({group: member, **poison})
        why = f"{group}={member} with {poison}"
    return ApiCase(kwargs, why)


def _filled(value: Any, where: Place) -> Any:
    if isinstance(value, str):
        return where.fill(value)
    if isinstance(value, Path):
        return Path(where.fill(str(value)))
    if isinstance(value, list):
        return [_filled(v, where) for v in value]
    return value


def _option_types() -> dict[str, set[type]]:
    types: dict[str, set[type]] = {}
    for cls in STRATEGIES.values():
        for option, default, _ in cls.options():
            types.setdefault(option, set()).add(type(default))
    return types


STRATEGY_OPTION_TYPES = _option_types()


def api_strict_refusal(case: ApiCase) -> str:
    """Why ``case`` must be refused: a poison, or a negative count or NaN for a strategy's option."""
    if case.must_refuse:
        return case.must_refuse
    for key, value in case.kwargs.items():
        kinds = STRATEGY_OPTION_TYPES.get(key, set())
        if key.endswith("seed") or len(kinds) != 1:
            continue
        kind = next(iter(kinds))
        negative = kind is int and value == -1 and not isinstance(value, bool)
        nan = kind is float and isinstance(value, float) and math.isnan(value)
        if negative or nan:
            return f"{key}={value!r} is no value of a {kind.__name__} option"
    return ""


def run_api_case(case: ApiCase, pristine: Path) -> None:
    with place(pristine) as where:
        call = {"evaluator": "cost", "budget": 2, "progress": False, "out": where.out,
                **{k: _filled(v, where) for k, v in case.kwargs.items()}}
        label = f"nas.search(**{call!r})"
        raised: NasError | None = None
        with watchdog(label), captured():
            try:
                nas.search(**call)
            except NasError as exc:
                raised = exc
            except Exception as exc:  # noqa: BLE001 - what the fuzzer is looking for
                pytest.fail(f"{type(exc).__name__} escaped ({exc}): {label}")
        if raised is not None:
            message = str(raised)
            assert message and "\n" not in message, f"not one line: {message!r}: {label}"
            leaked = [m for m in INTERNAL if m in message]
            assert not leaked, f"the error is a Python exception's text ({leaked[0]}): {message!r}: {label}"
        else:
            must = api_strict_refusal(case)
            assert not must, f"accepted, though {must}: {label}"
        check_files(where, refused=raised is not None, resumed=bool(call.get("resume")), label=label)


@settings(max_examples=CI_API_CASES, derandomize=True, **FUZZ)
@given(case=api_cases())
def test_random_search_calls_return_or_raise_nas_errors(pristine, cheap_runs, case):
    run_api_case(case, pristine)


@pytest.mark.slow
@settings(max_examples=SLOW_CASES, **FUZZ)
@given(case=api_cases())
def test_random_search_calls_long(pristine, cheap_runs, case):
    run_api_case(case, pristine)


# -- what the fuzzer found, each kept as it was found ------------------------------------------------
# (case, words after ``nas run``, a fragment of the one error line). Each was a traceback, a
# Python exception's own text, or a run written where it should not be, before its fix.
FOUND_CLI = [
    # a YAML value that does not parse: yaml's ParserError/ScannerError escaped (nas/config.py)
    ("unclosed bracket", ["backend=["], "backend: cannot read the value '['"),
    ("unclosed quote", ["seed='"], "seed: cannot read the value"),
    # OmegaConf's interpolation: InterpolationKeyError escaped, or ${oc.env:HOME} wrote the run into
    # the home folder (nas/config.py)
    ("interpolation of a missing key", ["run_id=${nope}"], "run_id: '${nope}' is not expanded"),
    ("interpolation of the environment", ["out=${oc.env:HOME}"], "out: '${oc.env:HOME}' is not expanded"),
    ("interpolation in a saved config", [f"config={INPUTS}/interp.yaml"], "is not expanded"),
    # a group of settings given one value: AttributeError escaped (nas/config.py)
    ("a group given a number", ["strategy=evolution", "limits=3", "backend=local"], "limits: a group of settings"),
    ("a group given null", ["space=@INPUTS@/tiny.yaml", "strategy=evolution", "limits=null"],
     "limits: a group of settings"),
    # SQLAlchemy's ArgumentError escaped (nas/strategies/optuna_sampler.py)
    ("optuna storage that is no URL", ["strategy=optuna", "strategy.storage=x"], "storage: Optuna cannot open 'x'"),
    # NNI refused these only once its thread ran, after the run folder was written, with its own
    # TypeError/ValueError text (nas/strategies/nni_strategies.py)
    ("NNI TPE with negative startup jobs", ["strategy.name=nni.TPE", "strategy.n_startup_jobs=-1"],
     "n_startup_jobs: must be an integer >= 1"),
    ("NNI RL with negative samples", ["strategy.name=nni.PolicyBasedRL", "strategy.samples_per_update=-1"],
     "samples_per_update: must be an integer >= 1"),
    ("NNI evolution with a probability above 1", ["strategy=nni.RegularizedEvolution", "mutation_prob=1.5"],
     "mutation_prob: must be a probability"),
    # NotADirectoryError escaped (nas/run/api.py)
    ("out inside a file", ["strategy.name=optuna", f"out={INPUTS}/plain.txt/sub"], "is a file"),
    # the run was written into the working directory (nas/run/api.py)
    ("out empty", ["out=''"], "out: empty"),
    # OSError (file name too long) escaped after out/runs was made (nas/run/folder.py)
    ("run_id too long", ["run_id=" + "x" * 300], "run_id: at most"),
    # OSError (file name too long) escaped where the path was looked up (nas/run/runconfig.py,
    # search_spaces/registry.py, evaluators/latency/store.py)
    ("config with a name too long", ["backend=", "config=" + LONG], "config: "),
    ("space with a name too long", [f"space={LONG}.yaml"], "space file "),
    ("latency profile with a name too long", ["latency.profile=" + LONG], "latency.profile: cannot read"),
    # json's JSONDecodeError escaped (evaluators/latency/store.py)
    ("latency profile with an unreadable fingerprint", [f"latency.profile={INPUTS}/badprofile"],
     "latency.profile: cannot read"),
    # the line said "got NoneType" (search_spaces/schema.py)
    ("an empty space file", ["backend=", f"space={INPUTS}/empty.yaml"], "empty.yaml: expected a mapping, got nothing"),
    # TypeError escaped once the population was compared with it (nas/strategies/evolution.py)
    ("evolution with a text initial", ["strategy=evolution", "initial=x", "budget=4"],
     "initial: must be an integer >= 1"),
    # accepted: every run ended at once, "space exhausted" (nas/strategies/random_search.py)
    ("random with no tries", ["strategy=random", "max_tries=0"], "max_tries: must be an integer >= 1"),
    # TypeError escaped (nas/strategies/optuna_sampler.py)
    ("optuna with a text startup", ["strategy=optuna", "startup_trials=x"], "startup_trials: must be an integer"),
    # TypeError escaped (evaluators/latency/measure.py, evaluators/latency/store.py)
    ("latency device a number", ["latency.device=-1"], "latency.device: -1 is not one of cpu"),
    ("latency profile a number", ["latency.profile=5"], "latency.profile: expected a profile folder"),
    # TypeError escaped (nas/run/problem.py)
    ("objectives a number", ["objectives=5"], "objectives: expected a metric or a list"),
    # TypeError escaped (evaluators/registry.py)
    ("cost with null classes", ["strategy=optuna", "evaluator.num_classes="], "num_classes: must be an integer >= 1"),
    # the line was "expected str, bytes or os.PathLike object, not NoneType" (evaluators/registry.py)
    ("supernet without its checkpoint", ["evaluator=supernet"], "missing option ckpt"),
    # torch's "Invalid learning rate: nan" escaped (nas/strategies/darts_config.py)
    ("DARTS with a NaN learning rate", ["strategy.name=darts", "strategy.lr=.nan"], "lr: must be a number > 0"),
    # accepted: DARTS trained its supernet until the watchdog stopped it (nas/strategies/darts_config.py)
    ("DARTS with a NaN latency weight", ["strategy.name=darts", "strategy.latency_weight=.nan"],
     "latency_weight must be >= 0"),
    ("DARTS with a NaN collapse share", ["strategy.name=darts", "strategy.collapse_threshold=.nan"],
     "collapse_threshold: must be a share"),
    # accepted: every candidate trained, or failed, until the watchdog stopped it (evaluators/training.py)
    ("proxy with negative BN recalibration", ["evaluator.name=proxy", "evaluator.bn_recalibration=-1"],
     "bn_recalibration: must be an integer >= 0"),
    ("proxy with a NaN weight decay", ["evaluator.name=proxy", "evaluator.weight_decay=.nan"],
     "weight_decay: must be a number >= 0"),
    ("proxy with a NaN label smoothing", ["evaluator.name=proxy", "evaluator.label_smoothing=.nan"],
     "label_smoothing: must be a number >= 0"),
]


@pytest.mark.parametrize("case, words, fragment", FOUND_CLI, ids=[c[0] for c in FOUND_CLI])
def test_found_command_lines_are_refused_in_one_line(pristine, cheap_runs, case, words, fragment):
    if any("nni." in w for w in words):
        pytest.importorskip("nni")
    run_cli_case(Case(tuple(words), must_refuse=case), pristine)
    with place(pristine) as where, captured() as (_, err, _):
        assert main(["run", "evaluator=cost", "budget=2", "progress=false", f"out={where.out}",
                     *(where.fill(w) for w in words)]) == 2
    assert fragment in err.getvalue(), err.getvalue()


FOUND_API = [
    # TypeError or ValueError from dict()/list() escaped (nas/run/api.py)
    ("ray a number", {"ray": 5}, "ray: expected a mapping of settings"),
    ("ray a list", {"ray": ["x"], "latency": "auto"}, "ray: expected a mapping of settings"),
    ("evaluator_options a number", {"evaluator_options": 5}, "evaluator_options: expected a mapping"),
    ("data a number", {"data": 5, "max_macs": 3e8}, "data: expected a name or a mapping"),
    ("baselines a number", {"baselines": 5}, "baselines: expected auto, none or a list"),
    # the line was "'int' object has no attribute 'create_new_study'" (nas/strategies/optuna_sampler.py)
    ("optuna storage a number", {"strategy": "optuna", "storage": 5}, "storage: expected a database URL"),
    # a number or an empty text: the run went into a folder named 5, or the working directory
    ("out a number", {"out": 5}, "out: expected a folder path"),
    ("out empty", {"out": ""}, "out: empty"),
    # evaluator options were not typed in Python: a training started (evaluators/registry.py)
    ("proxy with a text amp", {"evaluator": "proxy", "evaluator_options": {"amp": "maybe"}},
     "evaluator.amp: expected bool"),
    ("proxy with a text seed", {"evaluator": "proxy", "evaluator_options": {"seed": "1.5"}},
     "evaluator.seed: expected int"),
    ("zero_cost with a text seed", {"evaluator": "zero_cost", "evaluator_options": {"seed": "many"}},
     "evaluator.seed: expected int"),
    # TypeError escaped (nas/strategies/optuna_sampler.py)
    ("optuna with an empty startup", {"strategy": "optuna", "startup_trials": ""}, "startup_trials: must be"),
    # None started the default evaluator's training: the watchdog stopped the case (nas/run/api.py)
    ("evaluator None", {"evaluator": None, "space": "fused_mbconv", "strategy": "random"},
     "evaluator: expected a registered name or a callable"),
]


@pytest.mark.parametrize("case, kwargs, fragment", FOUND_API, ids=[c[0] for c in FOUND_API])
def test_found_search_calls_raise_one_line_nas_errors(pristine, cheap_runs, case, kwargs, fragment):
    run_api_case(ApiCase(kwargs, must_refuse=case), pristine)
    with place(pristine) as where, captured(), pytest.raises(NasError, match=re.escape(fragment)):
        nas.search(**{"evaluator": "cost", "budget": 2, "progress": False, "out": where.out, **kwargs})


# -- the fuzzer's own sources ------------------------------------------------------------------------
def test_the_fuzzer_draws_every_key_the_run_accepts():
    for key in ("budget", "strategy.population", "population", "evaluator.num_classes", "supernet.ckpt",
                "data.val_fraction", "latency.threads", "select.eta", "ray.workers", "limits.max_params",
                "constraints.params", "config", "run_id", "resume"):
        assert key in KEYS, key
    assert {"ray", "limits", "select", "latency", "evaluator_options", "population"} <= set(API_KEYS)
