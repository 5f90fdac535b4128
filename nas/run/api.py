"""The Python API's search: ``nas.search(...)`` and the ``SearchResult`` it returns.

``search`` and ``nas run`` share one path: a run config (a plain dict over ``run_defaults()``) is
checked and turned into objects by ``start``, which writes nothing until every input is valid.
"""
from __future__ import annotations

import inspect
import logging
import math
import os
import random
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from evaluators.base import DEFAULT_DATA, QUANTIZE, ChecksSpace
from evaluators.registry import as_evaluator, evaluator_options, make_evaluator
from nas.backends import make_backend
from nas.progress import ProgressBar
from nas.run.cheapest import check_reachable
from nas.run.folder import (
    RunDir,
    claim_new_run,
    resume_config,
    run_folder,
    run_id_for,
    write_config,
)
from nas.run.latencybound import (
    BASELINE,
    LatencyBound,
    bound_setting,
    bound_target,
    resolve_bound,
    with_bound,
)
from nas.run.problem import (
    CONSTRAINT_SHORTCUTS,
    arch_summary,
    latency_metric,
    noise_std,
    pareto_rows,
    parse_constraints,
    parse_objectives,
)
from nas.run.pruning import PRUNERS
from nas.run.runlatency import (
    int8_latency_source,
    latency_source,
    mnas_reward,
    with_latency_estimate,
)
from nas.run.runner import Run, check_budgets
from nas.run.settings import (
    OPEN_GROUPS,
    named_groups,
    run_defaults,
    search_parameters,
    setting_groups,
    setting_names,
    settings_doc,
)
from nas.run.store import RunFiles, RunMemory
from nas.run.trial import Baseline, Progress, RunInfo
from nas.select.baselines import refuse_infeasible, resolve_baselines
from nas.select.selection import Selection
from nas.strategies import make_strategy, strategy_options
from nas.strategies.base import Problem
from nas.strategies.prescreen import Prescreened
from search_spaces.arch import Architecture
from search_spaces.cost import cost
from search_spaces.errors import ConfigError, NasError, describe_choices, unknown
from search_spaces.limits import BuildLimits, check_buildable, check_space_buildable
from search_spaces.registry import load_space
from search_spaces.space import SearchSpace

log = logging.getLogger(__name__)


DEFAULT_EVALUATOR: str = run_defaults()["evaluator"]["name"]


@dataclass(frozen=True)
class SearchResult:
    """What a search leaves: its trials, the winner (and Pareto set), and where the files are."""

    run_id: str
    run_dir: Path | None  # None for a run kept in memory (out=None)
    trials: pd.DataFrame  # one row per evaluation (repeats and baselines included), in order
    best: dict[str, Any] | None  # the winner: best mean among the most-repeated searched candidates
    pareto: pd.DataFrame  # non-dominated feasible searched architectures (their means)
    problem: Problem
    space: SearchSpace
    config: dict[str, Any] = field(repr=False)
    stopped_because: str = ""
    summary: dict[str, Any] = field(default_factory=dict, repr=False)  # best.yaml's content

    @property
    def best_arch(self) -> Any:
        """The best architecture as a member of the space (None when nothing succeeded)."""
        return None if self.best is None else self.space.from_string(self.best["arch"])

    @property
    def archs(self) -> pd.DataFrame:
        """One row per architecture: mean metrics, ``<objective>_std``, ``n``, baseline/searched."""
        return arch_summary(self.trials, self.problem)

    @property
    def baselines(self) -> pd.DataFrame:
        """The hand-designed references' rows of ``archs``."""
        archs = self.archs
        return archs[archs["baseline"].astype(bool)] if len(archs) else archs

    @property
    def noise(self) -> tuple[float, int] | None:
        """(seed-to-seed std of the first objective, degrees of freedom) from the repeats."""
        return noise_std(self.trials, self.problem.objectives[0].metric)

    def top(self, n: int = 5) -> pd.DataFrame:
        """The ``n`` best searched architectures by their mean on the first objective."""
        objective = self.problem.objectives[0]
        archs = self.archs
        if objective.metric not in archs:
            return archs.head(0)
        archs = archs[archs["searched"].astype(bool)]
        return archs.sort_values(objective.metric, ascending=objective.direction == "min",
                                 kind="stable").head(n)


# -- public API -------------------------------------------------------------------------------------
def search(
    space: str | Path | SearchSpace | None = None,
    *,
    evaluator: str | Callable[..., Any] = DEFAULT_EVALUATOR,
    evaluator_options: Mapping[str, Any] | None = None,
    progress: bool | Callable[[Progress], None] | None = None,
    **settings: Any,
) -> SearchResult:
    """Run a search and return its trials and best architecture.

    ``space``: a shipped name, a YAML path or a SearchSpace (e.g. ``CategoricalSpace({...})``).
    ``evaluator``: a registered name (options in ``evaluator_options``) or any callable
    ``arch -> dict`` (``accuracy`` is maximised unless ``objectives`` says otherwise); a callable is
    repeated only when it takes a ``repeat`` keyword.
    ``progress``: True for a progress bar on stderr, or a callable receiving a ``Progress``.
    Every other keyword is a run setting of ``nas run`` (``nas run --help``; ``nas.run.settings``
    declares them), given as a value, or for a group as a mapping of its settings or its name
    (``latency={"name": "table", "threads": 1}``, ``select="none"``); a keyword that is no setting is
    an option of the strategy (``population=50``, ``sampler="tpe"``). ``out=None`` keeps the run in
    memory: nothing is written, and it cannot be resumed. With ``resume=True`` the run ``run_id``
    (default: the latest in ``out``) continues with its saved settings; the settings given must
    match them, except those a resume may change (``budget``, ``budget_hours``, ...).
    """
    if not (isinstance(evaluator, str) or callable(evaluator)):  # None would train the default unasked
        raise ConfigError(f"evaluator: expected a registered name or a callable arch -> metrics, got {evaluator!r}")
    if evaluator_options is not None:
        _check_group("evaluator_options", evaluator_options, False)
        if not isinstance(evaluator, str):
            raise ConfigError("evaluator_options apply only to an evaluator given by name")
    names = setting_names()
    options = {k: v for k, v in settings.items() if k not in names}  # the strategy's own
    cfg, explicit = _settings_config({k: v for k, v in settings.items() if k in names})
    if options:
        cfg["strategy"].update(options)
        explicit |= {f"strategy.{k}" for k in options}
    if space is not None:
        cfg["space"] = space.name if isinstance(space, SearchSpace) else str(space)
        explicit.add("space")
    evaluator_obj = None
    if isinstance(evaluator, str):
        cfg["evaluator"] = {"name": evaluator, **dict(evaluator_options or {})}
        if evaluator != DEFAULT_EVALUATOR or evaluator_options:
            explicit |= {f"evaluator.{k}" for k in cfg["evaluator"]}
    else:
        evaluator_obj = evaluator
    cfg["progress"] = bool(progress)
    space_obj = space if isinstance(space, SearchSpace) else None
    if progress is True:
        return _with_progress_bar(cfg, explicit, space_obj, evaluator_obj)
    return start(cfg, explicit, space=space_obj, evaluator=evaluator_obj,
                 on_trial=progress if callable(progress) else None)


def _signature() -> inspect.Signature:
    """``search``'s own parameters, one keyword per run setting, then the strategy's options."""
    own = [p for p in inspect.signature(search).parameters.values() if p.kind is not p.VAR_KEYWORD]
    options = inspect.Parameter("strategy_options", inspect.Parameter.VAR_KEYWORD, annotation=Any)
    return inspect.Signature([*own, *search_parameters(), options], return_annotation=SearchResult)


search.__signature__ = _signature()  # help(nas.search) and editors list every setting
search.__doc__ = f"{search.__doc__}\n    Settings:\n\n" + "\n".join(
    f"    {line}" for line in settings_doc().splitlines()) + "\n"


def _settings_config(given: Mapping[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """The run config of ``search``'s setting keywords over the defaults, and the keys given
    (``None`` for a group, or for ``data``, means its defaults)."""
    cfg, explicit = run_defaults(), set()
    named, groups = named_groups(), setting_groups()
    for key, value in given.items():
        if key in groups and key != "strategy":
            _check_group(key, value, key in named)
            if value is None:
                continue
            values = {"name": value} if isinstance(value, str) else dict(value)
            if key in OPEN_GROUPS:
                cfg[key] = values  # free-form: what is given is the whole group
            else:
                unknown_keys = sorted(set(values) - set(cfg[key]))
                if unknown_keys:
                    raise ConfigError(describe_choices(f"{key} option", unknown_keys[0],
                                                       [f"{key}.{k}" for k in cfg[key]]))
                cfg[key].update(values)
            explicit |= {f"{key}.{k}" for k in values}
            continue
        if key == "strategy":
            cfg["strategy"]["name"] = value
            explicit.add("strategy.name")
            continue
        if key == "baselines" and not (value is None or isinstance(value, (str, list, tuple))):
            raise ConfigError(f"baselines: expected auto, none or a list of reference names / architecture "
                              f"strings, got {value!r}")  # resolve_baselines' words, before list() fails
        if key == "out" and value is not None:
            _check_out(value)
            value = str(value)
        if key in ("objectives", "baselines") and isinstance(value, (list, tuple)):
            value = list(value)
        elif key == "objectives" and value is not None:
            value = [value]
        if key == "objectives" and value is None:
            continue
        cfg[key] = value
        explicit.add(key)
    return cfg, explicit


def _check_out(given: Any) -> None:
    """``out`` names a folder the run can be written in: refused before anything is written when it
    is not a path, is empty (that would be the working directory), or lies inside a file."""
    if isinstance(given, bool) or not isinstance(given, (str, os.PathLike)):
        raise ConfigError(f"out: expected a folder path (or None to keep the run in memory), got {given!r}")
    if not str(given).strip():
        raise ConfigError("out: empty; give a folder (or null, None in Python, to keep the run in memory)")
    path = Path(given)
    for folder in (path, *path.parents):
        if folder.exists():
            if not folder.is_dir():
                raise ConfigError(f"out: {path} cannot be a folder: {folder} is a file")
            return


def _check_group(field: str, value: Any, named: bool) -> None:
    """A group argument of ``search`` (``ray={"workers": 2}``) is a mapping of its settings, or the
    name of a member where the group has members (``select="none"``); anything else is one line."""
    if value is None or isinstance(value, Mapping) or (named and isinstance(value, str)):
        return
    what = "a name or a mapping of settings" if named else "a mapping of settings"
    raise ConfigError(f"{field}: expected {what}, got {value!r}")


# -- config -> objects -> run -----------------------------------------------------------------------
def _with_progress_bar(cfg, explicit, space_obj, evaluator_obj) -> SearchResult:
    bar = ProgressBar()
    try:
        return start(cfg, explicit, space=space_obj, evaluator=evaluator_obj, on_trial=bar.update,
                     on_start=bar.start)
    finally:
        bar.close()


def start(
    cfg: dict[str, Any],
    explicit: set[str],
    space: SearchSpace | None = None,
    evaluator: Callable[..., Any] | None = None,
    on_trial: Callable[[Progress], None] | None = None,
    on_start: Callable[[str, int | None, str], None] | None = None,
) -> SearchResult:
    """Check ``cfg``, build the run's objects, then run (or resume) it.

    Nothing is written until every input is valid. ``on_start(run_id, budget, metric)`` is called
    once the run begins (for progress displays).
    """
    in_memory = cfg["out"] is None
    out = Path(str(cfg["out"]))
    if not in_memory:
        _check_out(str(cfg["out"]))  # a name typed on the command line may look like a number
    if cfg["resume"] and in_memory:
        raise ConfigError("resume: a run kept in memory (out=None) cannot be resumed; give out=FOLDER")
    if cfg["resume"]:
        cfg, rdir = resume_config(cfg, explicit, out)
    else:
        rdir = None
    budget, budget_hours = _budgets(cfg)
    seed = cfg["seed"]
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"seed: expected int, got {seed!r}")

    space_obj = load_space(space if space is not None else cfg["space"])
    cfg["space"] = space_obj.name if space is not None else cfg["space"]
    quantize = cfg.get("quantize", "none")
    if quantize not in QUANTIZE:
        raise unknown("quantize", quantize, QUANTIZE)
    if evaluator is None:
        name = cfg["evaluator"]["name"]
        opts = {k: v for k, v in cfg["evaluator"].items() if k != "name"}
        options, takes_data, _ = evaluator_options(name)
        if quantize == "int8":
            if "quantize" not in {o.name for o in options}:
                raise ConfigError(f"quantize: int8 scores the trained network after quantization; evaluator {name} "
                                  "trains none (use evaluator=proxy)")
            opts["quantize"] = cfg["evaluator"]["quantize"] = "int8"
        if not takes_data:
            if any(k.startswith("data") for k in explicit):
                raise ConfigError(f"evaluator {name} does not use data: remove the data settings")
            cfg["data"] = None
        evaluator_obj = make_evaluator(name, data=cfg["data"] if takes_data else None, **opts)
    else:
        if quantize != "none":
            raise ConfigError("quantize: int8 needs a registered evaluator that trains (evaluator=proxy), "
                              "not a Python callable")
        evaluator_obj = as_evaluator(evaluator)
        cfg["evaluator"] = {"name": f"python:{evaluator_obj.name}"}
        cfg["data"] = None
    if isinstance(evaluator_obj, ChecksSpace):
        evaluator_obj.check_space(space_obj)

    problem = _problem(cfg, explicit, space_obj, evaluator_obj)
    cfg["objectives"] = [f"{o.metric}:{o.direction}" for o in problem.objectives]
    found = resolve_baselines(cfg.get("baselines"), space_obj)
    metric = latency_metric(quantize == "int8")
    target, bound = _latency_bound_plan(cfg, explicit, problem, space_obj, evaluator_obj, found)
    if target is not None or bound is not None:
        # Until the baseline is timed (the last check below), an infinite bound: the latency
        # sources and the costs known before training are chosen for a latency constraint.
        problem = with_bound(problem, metric, bound.ms if bound is not None else math.inf)
    latency = latency_source(cfg, problem, space_obj, evaluator_obj)
    int8 = int8_latency_source(cfg, problem, space_obj, evaluator_obj) if quantize == "int8" else None
    if latency is None and "mnas" in [o.metric for o in problem.objectives]:
        raise ConfigError("objectives: mnas needs latency_ms of each candidate; set latency=measured|table|learned")
    if latency is not None or int8 is not None:
        from evaluators.latency.source import WithLatency  # noqa: PLC0415 - torch: only to time candidates

        evaluator_obj = WithLatency(evaluator_obj, latency, mnas_reward(cfg, problem), problem.objectives[0].metric,
                                    int8=int8)
        problem = with_latency_estimate(problem, latency, int8)

    selection = Selection.from_options(cfg.get("select"))
    limits = BuildLimits.from_options(cfg["limits"])
    check_space_buildable(space_obj, limits)
    for baseline in found:
        if isinstance(baseline.arch, Architecture):  # a categorical space's members are plain dicts
            check_buildable(baseline.arch, limits=limits)

    strategy_name = cfg["strategy"]["name"]
    strategy_opts = {k: v for k, v in cfg["strategy"].items() if k != "name"}
    strategy = make_strategy(strategy_name, space_obj, problem, seed, **strategy_opts)
    strategy.bind(cfg.get("data"), latency)  # DARTS trains a supernet on the run's data (checked here)
    backend = make_backend(cfg["backend"], cfg.get("ray"))
    if cfg["pruner"] not in PRUNERS:
        raise unknown("pruner", cfg["pruner"], PRUNERS)
    screen = _prescreen_score(cfg, space_obj)
    given = cfg.get("run_id") not in (None, "")
    if not in_memory and rdir is None and given:
        rdir = run_folder(out, run_id_for(cfg, space_obj, strategy_name))
        if rdir.path.exists() and any(rdir.path.iterdir()):
            raise NasError(
                f"run {rdir.run_id} already exists in {rdir.path}: resume it (resume=true "
                f"run_id={rdir.run_id}) or choose another run_id"
            )
    if not cfg["resume"]:  # a resumed run was checked when it started, and its bounds cannot change
        _check_reachable(cfg, problem, space_obj, evaluator_obj, {"latency_ms": latency, "latency_int8_ms": int8})
    if target is not None and bound is None:
        # The last check, as it takes seconds: time the baseline, then give the strategy the bound.
        bound = _resolve_bound(target, int8 if metric == "latency_int8_ms" else latency, metric,
                               typed="max_latency_ms" in explicit)
        problem = with_bound(problem, metric, bound.ms)
        strategy = make_strategy(strategy_name, space_obj, problem, seed, **strategy_opts)
        strategy.bind(cfg.get("data"), latency)
    if bound is not None:
        cfg["latency_bound"] = bound.to_config()
    else:
        cfg.pop("latency_bound", None)
    baselines = [refuse_infeasible(b, problem, exempt={metric} if b is target else ()) for b in found]
    if in_memory:
        return _run_in_memory(cfg, space_obj, strategy, evaluator_obj, problem, budget, budget_hours,
                              backend, selection, baselines, screen, on_trial, on_start, bound)

    # -- from here on, files are written ----------------------------------------------------------
    try:
        if rdir is None:
            rdir = claim_new_run(out, run_id_for(cfg, space_obj, strategy_name))
        rdir.path.mkdir(parents=True, exist_ok=True)
        cfg["run_id"] = rdir.run_id
        write_config(rdir, cfg, space_obj if space is not None else None)
    except OSError as exc:  # read-only, full, or not ours: one line naming where
        raise NasError(f"out: cannot write {exc.filename or out} ({exc.strerror or exc})") from None
    strategy.bind(cfg.get("data"), latency, rdir.path)
    strategy = _with_run_storage(strategy, strategy_name, strategy_opts, space_obj, problem, seed, rdir)
    if screen is not None:
        strategy = Prescreened(strategy, screen, cfg["prescreen_keep"], label=cfg["prescreen"])
    run = Run(
        space_obj, strategy, evaluator_obj, problem, budget=budget,
        budget_hours=budget_hours, seed=seed, backend=backend,
        info=RunInfo(rdir.run_id, space_obj.name, strategy_name, str(evaluator_obj.name), seed),
        on_trial=on_trial, pruner=cfg["pruner"], selection=selection, baselines=baselines,
        store=RunFiles(rdir.path, out), latency_bound=bound,
    )
    return _finish(run, cfg, on_start, resume=bool(cfg["resume"]))


def _finish(run: Run, cfg: dict[str, Any], on_start: Callable[..., None] | None,
            resume: bool = False) -> SearchResult:
    """Run ``run`` and wrap what it leaves as a SearchResult."""
    if on_start is not None:
        on_start(run.info.run_id, run.total, run.problem.objectives[0].metric)
    try:
        trials = run.run(resume=resume)
    finally:
        run.strategy.close()  # a strategy running its own loop (NNI's) stops it
    summary = run.summary(trials)
    return SearchResult(
        run_id=run.info.run_id, run_dir=run.store.path, trials=trials, best=summary["best"],
        pareto=pareto_rows(trials, run.problem).reset_index(drop=True), problem=run.problem,
        space=run.space, config=cfg, stopped_because=run.stopped_because, summary=summary,
    )


def _run_in_memory(cfg, space, strategy, evaluator, problem, budget, budget_hours, backend, selection,
                   baselines, screen, on_trial, on_start, bound) -> SearchResult:
    """``out=None``: the run lives in this process; a strategy that needs working files (NNI's)
    gets a temporary folder, removed afterwards."""
    name = cfg["strategy"]["name"]
    run_id = run_id_for(cfg, space, name)
    cfg["run_id"] = run_id
    with tempfile.TemporaryDirectory(prefix="nas-") as scratch:
        options = {k: v for k, v in cfg["strategy"].items() if k != "name"}
        if "workdir" in [opt for opt, _, _ in strategy_options(name)] and not options.get("workdir"):
            strategy = make_strategy(name, space, problem, cfg["seed"], **{**options, "workdir": scratch})
        if screen is not None:
            strategy = Prescreened(strategy, screen, cfg["prescreen_keep"], label=cfg["prescreen"])
        run = Run(
            space, strategy, evaluator, problem, budget=budget, budget_hours=budget_hours,
            seed=cfg["seed"], backend=backend,
            info=RunInfo(run_id, space.name, name, str(evaluator.name), cfg["seed"]),
            on_trial=on_trial, pruner=cfg["pruner"], selection=selection, baselines=baselines,
            store=RunMemory(run_id), latency_bound=bound,
        )
        return _finish(run, cfg, on_start)


def _prescreen_score(cfg: Mapping[str, Any], space: SearchSpace) -> Callable[[Any], float] | None:
    """The zero-cost score that pre-screens proposals (None without ``prescreen``); checked here,
    before anything is written."""
    name, keep = cfg.get("prescreen"), cfg.get("prescreen_keep")
    if name in (None, "", "none"):
        return None
    if isinstance(keep, bool) or not isinstance(keep, (int, float)) or not 0 < keep <= 1:
        raise ConfigError(f"prescreen_keep: must be a number in (0, 1], got {keep!r}")
    from evaluators.zero_cost import PROXIES, ZeroCostEvaluator  # noqa: PLC0415 - torch: only with prescreen

    if name not in PROXIES:
        raise unknown("prescreen", name, PROXIES)
    scorer = ZeroCostEvaluator(data=cfg.get("data") or DEFAULT_DATA, proxy=str(name))
    scorer.check_space(space)
    return lambda arch: scorer(arch)["zero_cost"]


def _budgets(cfg: Mapping[str, Any]) -> tuple[int | None, float | None]:
    return check_budgets(cfg["budget"], cfg["budget_hours"])


def _problem(cfg: dict[str, Any], explicit: set[str], space: SearchSpace, evaluator: Any) -> Problem:
    specs = cfg["objectives"]
    default = evaluator.default_objectives
    if default and "objectives" not in explicit:
        specs = list(default)
    objectives = parse_objectives(specs)
    shortcuts = {k: cfg.get(k) for k in ("max_params", "max_macs", "max_latency_ms")}
    setting = bound_setting(shortcuts["max_latency_ms"])
    shortcuts["max_latency_ms"] = None if setting == BASELINE else setting  # a number once timed (start)
    constraints = parse_constraints(cfg.get("constraints") or {}, cfg.get("quantize") == "int8", **shortcuts)
    return Problem(objectives=objectives, constraints=constraints,
                   estimate=_estimator(constraints, space, evaluator))


def _check_reachable(cfg: Mapping[str, Any], problem: Problem, space: SearchSpace, evaluator: Any,
                     latency: Mapping[str, Any]) -> None:
    """A bound below the space's cheapest member is an error now, not a run that refuses every
    proposal (``max_latency_ms=baseline`` is still infinite here: the baseline meets its own bound)."""
    metric = latency_metric(cfg.get("quantize") == "int8")
    labels = {metric if m == "latency_ms" else m: key for key, m in CONSTRAINT_SHORTCUTS.items()
              if cfg.get(key) is not None}
    check_reachable(problem.constraints, space, int(evaluator.num_classes), latency, labels)


def _latency_bound_plan(cfg: dict[str, Any], explicit: set[str], problem: Problem, space: SearchSpace,
                        evaluator: Any, baselines: list[Baseline]) -> tuple[Baseline | None, LatencyBound | None]:
    """(the baseline whose latency bounds the run, the bound when it is known already): a resumed
    run keeps the bound its config.yaml records. A default ``baseline`` that does not apply
    becomes ``max_latency_ms=None`` in ``cfg``, which is what config.yaml then records."""
    if bound_setting(cfg.get("max_latency_ms")) != BASELINE:
        return None, None
    recorded = cfg.get("latency_bound") if cfg["resume"] else None
    if recorded:
        bound = LatencyBound.from_config(recorded)
        return next((b for b in baselines if b.key == bound.arch), None), bound
    if cfg["resume"]:
        log.warning("run %s: max_latency_ms=baseline but config.yaml records no bound; timing the "
                    "baseline again", cfg.get("run_id"))
    target = bound_target(cfg, explicit, problem, space, evaluator, baselines)
    if target is None:
        cfg["max_latency_ms"] = None
    return target, None


def _resolve_bound(target: Baseline, source: Any, metric: str, typed: bool) -> LatencyBound:
    """The baseline's latency under the run's settings; an error of the default names its way out."""
    if source is None:  # every source that can time a candidate exists once a latency bound does
        raise ConfigError(f"max_latency_ms=baseline: this run times no candidate's {metric}")
    try:
        return resolve_bound(target, source, metric)
    except ConfigError as exc:
        if typed:
            raise
        raise ConfigError(f"max_latency_ms=baseline (the default; max_latency_ms=none turns it off): "
                          f"{exc}") from None


def _estimator(constraints: Mapping[str, float], space: SearchSpace, evaluator: Any):
    """Params/MACs known before training, for constraints on them (Architecture members only)."""
    if not {"params", "macs"} & set(constraints):
        return None
    if not isinstance(space.sample(random.Random(0)), Architecture):
        return None
    num_classes = int(evaluator.num_classes)

    def estimate(arch: Any) -> dict[str, float]:
        c = cost(arch, num_classes)
        return {"params": c.params, "macs": c.macs}

    return estimate


def _with_run_storage(strategy, name, options, space, problem, seed, rdir: RunDir):
    """Give a strategy that keeps its own store (Optuna's ``storage``) a file in the run folder,
    and one that writes working files (NNI's ``workdir``) a folder in it."""
    names = [opt for opt, _, _ in strategy_options(name)]
    if "storage" in names and not options.get("storage"):
        url = f"sqlite:///{(rdir.path / 'optuna.db').resolve()}"
        return make_strategy(name, space, problem, seed, **{**options, "storage": url})
    if "workdir" in names and not options.get("workdir"):
        return make_strategy(name, space, problem, seed, **{**options, "workdir": str(rdir.path / "nni")})
    return strategy
