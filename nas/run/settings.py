"""The settings of a search run, declared once: name, type, default, help, and whether a resume may
change it.

``RunSettings`` is the single source. ``nas run`` reads its keys and types (``runconfig``), ``nas run
--help`` is ``help_text()``, ``nas.search`` takes every field as a keyword (its signature is
``search_parameters()``), ``config.yaml`` is ``run_defaults()`` with the run's values over it, and
resume changes only the fields declared ``resumable``. Adding a setting is adding a field here.

A group (``latency``, ``select``, ``ray``, ``limits``) is a dataclass of its own settings, set key by key
(``latency.threads=2``); a *named* group (``strategy``, ``evaluator``, ``data``) is chosen by name
(``strategy=evolution``) and its options are those of the member chosen, so they are not declared here.
Values are checked where they become objects (``check_budgets``, ``Selection.from_options``,
``BuildLimits.from_options``...), before anything is written.
"""
from __future__ import annotations

import copy
import dataclasses
import inspect
import textwrap
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from evaluators.base import DEFAULT_DATA
from nas.select.selection import SelectSettings
from search_spaces.limits import BuildLimits


def setting(default: Any, help: str = "", *, shown: str | None = None, resumable: bool = False) -> Any:
    """A field of a settings dataclass. ``help`` is its text in ``nas run --help`` (empty: listed
    without one); ``shown`` the left column there (default ``key=default``); ``resumable``: a resumed
    run may change it (budgets, display)."""
    metadata = {"help": help, "shown": shown, "resumable": resumable}
    if isinstance(default, (dict, list)) or dataclasses.is_dataclass(default):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def group(kind: type, help: str = "", *, resumable: bool = False) -> Any:
    """A field holding a group of settings: the dataclass ``kind`` with its own defaults."""
    return field(default_factory=kind, metadata={"help": help, "shown": None, "resumable": resumable})


def named(default: Mapping[str, Any], help: str, *, shown: str | None = None) -> Any:
    """A field whose value is chosen by name (``strategy=evolution``); the member's options are its
    own (``strategy.population=50``), so only the name is declared."""
    return setting(dict(default), help, shown=shown)


@dataclass(frozen=True)
class LatencySettings:
    """Where each candidate's ``latency_ms`` comes from, and how it is measured (the keys of
    ``nas latency``; a run times every candidate, so fewer timed runs than a profile)."""

    name: str = setting(
        "auto", "measured | table | learned | none: where latency_ms comes from (table/learned: the "
        "profile nas latency profile made for these settings, or latency.profile=DIR); auto: this "
        "machine's learned predictor or table when there is a profile, else measured when an objective "
        "or constraint needs it or the evaluator trains (timing then adds little), else none",
        shown="latency=auto")
    device: str = setting("cpu", "cpu | cuda: the device candidates are timed on")
    threads: int = setting(1, "torch threads while timing")
    batch: int = setting(1, "images per timed call")
    dtype: str = setting("float32", "float32 | float16 | bfloat16")
    channels_last: bool = setting(True, "time in the channels-last memory format")
    runtime: str = setting("torch", "torch | onnxruntime (nas latency runtimes lists them)")
    warmup: int = setting(3, "untimed calls before the first round")
    repeats: int = setting(10, "timed calls per round")
    rounds: int = setting(10, "rounds (networks interleaved); the statistic is over every timed call")
    placement: str = setting("per-round", "per-round | fixed: where the network's weights live")
    reference: str = setting("none", "none | block | matmul: a drift reference timed beside the rounds")
    statistic: str = setting("median", "median | lower-half: of the timed calls")
    profile: str | None = setting(None, "a profile folder to predict from (default: this machine's)")
    num_classes: int | None = setting(None, "classes of the timed head (default: the evaluator's)")
    target_ms: float | None = setting(
        None, "objectives=mnas: MnasNet's reward accuracy * (latency / target_ms) ** w")
    w: float = setting(-0.07, "MnasNet's exponent w")


@dataclass(frozen=True)
class RaySettings:
    """``backend=ray``: where and how wide (nas/backends/ray_tune.py)."""

    address: str | None = setting(
        None, "auto: join the cluster on this node (ray start --head); unset: RAY_ADDRESS, else a "
        "private local cluster")
    workers: int | None = setting(None, "concurrent trials (null: as many as the cluster's CPUs allow)")
    cpus_per_trial: int = setting(1, "CPUs (torch threads) per trial")
    gpus_per_trial: float = setting(0, "GPUs per trial")
    max_failures: int = setting(2, "retries of a trial whose Ray worker died")


@dataclass(frozen=True)
class RunSettings:
    """Every setting of ``nas run`` / ``nas.search``, in the order ``--help`` lists them."""

    space: str = setting("mbconv", "shipped space name (nas spaces) or a YAML file")
    strategy: dict[str, Any] = named(
        {"name": "evolution"},
        "random | evolution | optuna | darts | nni.<Name> (NNI's RegularizedEvolution, TPE, "
        "PolicyBasedRL, Random, GridSearch); nas strategies lists their options, set as <option>=V "
        "(population=50, sampler=tpe) or strategy.<option>=V", shown="strategy=evolution")
    evaluator: dict[str, Any] = named(
        {"name": "proxy"},
        "proxy | supernet | zero_cost | nasbench_macro | cost; evaluator.<option>=V (or "
        "<evaluator>.<option>=V) sets one of its options, e.g. evaluator.path=nas-bench-macro_cifar10.json, "
        "supernet.ckpt=PATH", shown="evaluator=proxy")
    data: dict[str, Any] = named(
        DEFAULT_DATA, "the data set of evaluators that train: digits | fashion_mnist | cifar10 | "
        "imagefolder; data.<option>=V (data.root=DIR, data.limit=N)", shown="data=digits")
    budget: int | None = setting(
        20, "evaluations (failed ones and the selection stage's repeats count); budget=null: time "
        "only; may be raised on resume", resumable=True)
    budget_hours: float | None = setting(
        None, "wall-time budget, summed across resumes", shown="budget_hours=H", resumable=True)
    seed: int = setting(0, "same seed + same settings = same trials (repeats included)")
    objectives: list[str] = setting(
        ["accuracy"], "metric[:max|min], the first is what best means; several for a Pareto search: "
        "objectives=[accuracy,latency_ms:min]", shown="objectives=[accuracy]")
    constraints: dict[str, float] = setting(
        {}, "metric -> maximum, e.g. constraints.latency_ms=20", shown="constraints.<metric>=X")
    max_params: float | None = setting(
        None, "no candidate with more parameters (a bound of 0 or less, or below the space's cheapest "
        "member, is refused at the start, exit 2; a run that ends with no feasible candidate evaluated "
        "names no winner and exits with code 3)", shown="max_params=N")
    max_macs: float | None = setting(None, "no candidate with more multiply-accumulates, as max_params",
                                     shown="max_macs=N")
    max_latency_ms: float | str | None = setting(
        "baseline",
        "baseline: no candidate slower than the first baseline (efficientnet_b0 for mbconv), timed on "
        "this machine with the latency settings when the run starts (kept on resume), so the summary "
        "says whether the winner beats it at its own speed. The default where it costs nothing extra "
        "(an evaluator that trains, a baseline, no latency objective), else the run is unbounded. "
        "max_latency_ms=X: X ms; none: no bound. With quantize=int8 it bounds latency_int8_ms")
    quantize: str = setting(
        "none", "int8: also quantize each trained candidate (post-training, x86 int8 kernels) and record "
        "accuracy_int8 and latency_int8_ms (its own profile: nas latency profile dtype=int8); "
        "objectives=[accuracy_int8,latency_int8_ms:min]")
    latency: LatencySettings = group(LatencySettings)
    select: SelectSettings = group(
        SelectSettings,
        "how the winner is confirmed (repeats count against budget; an evaluator that gives the same "
        "result every time is never repeated). race: once select.start of the budget has gone to new "
        "candidates, whenever one of the select.top candidates by mean has fewer than select.repeats "
        "evaluations it is evaluated again, and the strategy learns its running mean; halving: a final "
        "stage, successive halving over the top select.k by mean up to select.repeats evaluations (each "
        "rung keeps the best 1/eta; its cost is reserved from budget); none: the single best evaluation "
        "wins. Either way the winner is the best mean among the candidates with select.repeats "
        "evaluations")
    baselines: str | list[str] | None = setting(
        "auto", "hand-designed references evaluated like the finalists, outside the budget, shown beside "
        "the winner: auto (the space's own, e.g. efficientnet_b0 for mbconv), none, or "
        "[resnet18,ARCH_STRING,...]")
    pruner: str = setting("none", "median | asha: stop trainings whose epochs trail the others (Optuna's "
                          "MedianPruner / successive halving), status=pruned")
    prescreen: str | None = setting(
        None, "a zero-cost proxy (synflow, naswot, grad_norm, snip): score 1/prescreen_keep proposals "
        "per evaluation and evaluate the best", shown="prescreen=naswot")
    prescreen_keep: float = setting(0.25, "the share of proposals prescreen keeps")
    backend: str = setting("local", "ray: each evaluation is a Ray Tune trial, in parallel", resumable=True)
    ray: RaySettings = group(RaySettings, resumable=True)
    limits: BuildLimits = group(
        BuildLimits, "the largest network the run agrees to build, checked on the space's largest member "
        "and on the baselines before anything is written (activation: float32 feature maps of one "
        "image's forward pass)")
    out: str | None = setting("results", "results go to <out>/runs/<run_id>/ and <out>/leaderboard.csv",
                              resumable=True)
    run_id: str | None = setting(None, "the run's folder name (default: <time>-<space>-<strategy>)",
                                 shown="run_id=NAME", resumable=True)
    resume: bool = setting(
        False, "continue a crashed or stopped run (default: the latest one in out); budget / "
        "budget_hours may be raised, other settings must match", shown="resume=true", resumable=True)
    progress: bool = setting(True, "show a progress bar", resumable=True)


# Groups whose member is chosen by name and whose options are the member's own (not declared here).
MEMBER_GROUPS = ("strategy", "evaluator", "data")
# Groups whose options are free-form (checked by whoever consumes them).
OPEN_GROUPS = ("data", "constraints")


def _fields(kind: type) -> tuple[dataclasses.Field, ...]:
    return dataclasses.fields(kind)


def _is_group(f: dataclasses.Field) -> bool:
    """A field that is a dataclass of settings (``latency``, ``select``, ``ray``, ``limits``)."""
    return f.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(f.default_factory)


def setting_names() -> frozenset[str]:
    """The top-level settings."""
    return frozenset(f.name for f in _fields(RunSettings))


def named_groups() -> tuple[str, ...]:
    """Groups that take a name (``strategy=evolution``, ``select=none`` is ``select.name=none``)."""
    return tuple(f.name for f in _fields(RunSettings) if f.name in MEMBER_GROUPS
                 or (_is_group(f) and "name" in {s.name for s in _fields(f.default_factory)}))


def setting_groups() -> tuple[str, ...]:
    """Every group: named ones, those set only key by key (``ray``, ``limits``) and free-form ones."""
    return tuple(f.name for f in _fields(RunSettings)
                 if f.name in MEMBER_GROUPS or f.name in OPEN_GROUPS or _is_group(f))


def run_defaults() -> dict[str, Any]:
    """The defaults as a fresh nested dict (callers add the chosen strategy's and evaluator's options)."""
    out: dict[str, Any] = {}
    for f in _fields(RunSettings):
        value = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
        out[f.name] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else copy.deepcopy(value)
    return out


def resumable() -> frozenset[str]:
    """The settings a resumed run may change (extend the budget, move the display, ...)."""
    return frozenset(f.name for f in _fields(RunSettings) if f.metadata.get("resumable"))


# -- nas run --help ---------------------------------------------------------------------------------
_COLUMN = 29  # where the help text starts
_WIDTH = 100

_HEAD = """\
Search a space with a strategy, scoring each architecture with an evaluator.

Every setting is key=value (YAML typed: 5 is an int, true a bool, [a,b] a list):
"""

_TAIL = """\
  config=FILE                start from a saved run's config.yaml (a new run with its
                             settings; later keys override them)

Examples:
  nas run space=nasbench_macro evaluator=nasbench_macro evaluator.path=FILE budget=100
  nas run strategy=optuna sampler=tpe space=resnet evaluator=proxy data=digits budget=30
"""


def _shown(prefix: str, f: dataclasses.Field, value: Any) -> str:
    if f.metadata.get("shown"):
        return f.metadata["shown"]
    text = "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    if isinstance(value, float) and abs(value) >= 1e6:
        text = f"{value:.0e}".replace("e+0", "e").replace("e+", "e")  # 1e9, as typed
    if isinstance(value, list):
        text = "[" + ",".join(map(str, value)) + "]"
    return f"{prefix}{f.name}={text}"


def _entry(left: str, text: str) -> list[str]:
    left = f"  {left}"
    lines = textwrap.wrap(text, _WIDTH - _COLUMN, break_on_hyphens=False) if text else [""]
    if len(left) >= _COLUMN - 1:  # a long key gets its own line
        return [left] + [" " * _COLUMN + line for line in lines if line]
    return [left.ljust(_COLUMN) + lines[0]] + [" " * _COLUMN + line for line in lines[1:]]


def help_text() -> str:
    """``nas run --help``: every setting with its default and help, generated from ``RunSettings``."""
    lines: list[str] = []
    defaults = run_defaults()
    for f in _fields(RunSettings):
        if _is_group(f):
            if f.metadata["help"]:
                lines += _entry(f"{f.name}.*", f.metadata["help"])
            for sub in _fields(f.default_factory):
                lines += _entry(_shown(f"{f.name}.", sub, defaults[f.name][sub.name]), sub.metadata.get("help", ""))
            continue
        value = defaults[f.name]["name"] if f.name in MEMBER_GROUPS else defaults[f.name]
        lines += _entry(_shown("", f, value), f.metadata["help"])
    return _HEAD + "\n".join(lines) + "\n" + _TAIL


# -- nas.search's keywords --------------------------------------------------------------------------
SEARCH_OWN = ("space", "evaluator", "progress")  # search's own parameters: they also take objects


def search_parameters() -> list[inspect.Parameter]:
    """``nas.search``'s keyword parameters after its own, one per setting: a group takes a mapping of
    its settings, or a name where it has one (``strategy`` only a name: its options are keywords of
    their own); ``None`` means the declared default."""
    hints = typing.get_type_hints(RunSettings)
    defaults = run_defaults()
    names = named_groups()
    params = []
    for f in _fields(RunSettings):
        if f.name in SEARCH_OWN:
            continue
        kind: Any
        if f.name == "strategy":
            kind, default = str, defaults["strategy"]["name"]
        elif f.name in setting_groups():
            kind = (str | Mapping[str, Any] | None) if f.name in names else (Mapping[str, Any] | None)
            default = None
        else:
            kind, default = hints[f.name], defaults[f.name]
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=kind))
    return params


def settings_doc() -> str:
    """One paragraph per setting, for ``nas.search``'s docstring."""
    lines = []
    for f in _fields(RunSettings):
        text = f.metadata.get("help") or (f.default_factory.__doc__ or "").split("\n\n")[0]
        lines += textwrap.wrap(f"``{f.name}``: " + " ".join(text.split()), 96, subsequent_indent="    ",
                               break_on_hyphens=False)
    return "\n".join(lines)
