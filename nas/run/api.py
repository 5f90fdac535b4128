"""The Python API: ``nas.search(...)`` and ``nas.leaderboard(...)``.

``search`` and ``nas run`` share one path: a run config (a plain dict over ``RUN_DEFAULTS``) is
checked and turned into objects by ``start``, which writes nothing until every input is valid.
"""
from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from evaluators.base import DEFAULT_DATA, QUANTIZE, ChecksSpace
from nas.run.defaults import GROUPS, RUN_DEFAULTS, run_defaults
from nas.run.latencybound import (
    BASELINE,
    LatencyBound,
    bound_setting,
    bound_target,
    resolve_bound,
    with_bound,
)
from nas.run.problem import (
    arch_summary,
    latency_metric,
    noise_std,
    pareto_rows,
    parse_constraints,
    parse_objectives,
)
from nas.run.runfolders import (
    claim_new_run,
    resume_config,
    run_id_for,
    write_config,
)
from nas.run.runlatency import (
    int8_latency_source,
    latency_source,
    mnas_reward,
    with_latency_estimate,
)
from nas.run.runner import Run, check_budgets
from nas.run.runstore import RunFiles, RunMemory
from nas.run.store import RunDir, run_dir
from nas.run.trial import Baseline, Progress, RunInfo
from nas.select.baselines import refuse_infeasible, resolve_baselines
from nas.select.selection import Selection
from nas.strategies.base import Problem
from search_spaces.arch import Architecture
from search_spaces.errors import ConfigError, NasError, describe_choices, unknown
from search_spaces.limits import BuildLimits, check_buildable, check_space_buildable
from search_spaces.space import SearchSpace

log = logging.getLogger(__name__)


class _DefaultBound:
    """``max_latency_ms``'s default in ``search``: ``"baseline"`` where it applies (see
    ``RUN_DEFAULTS``), told apart from ``"baseline"`` given explicitly."""

    def __repr__(self) -> str:
        return "'baseline' where it applies"


DEFAULT_BOUND: Any = _DefaultBound()


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
    strategy: str = RUN_DEFAULTS["strategy"]["name"],
    evaluator: str | Callable[..., Any] = RUN_DEFAULTS["evaluator"]["name"],
    budget: int | None = RUN_DEFAULTS["budget"],
    seed: int = 0,
    out: str | Path | None = RUN_DEFAULTS["out"],
    objectives: Any = None,
    constraints: Mapping[str, float] | None = None,
    max_params: float | None = None,
    max_macs: float | None = None,
    max_latency_ms: float | str | None = DEFAULT_BOUND,
    budget_hours: float | None = None,
    resume: bool = False,
    run_id: str | None = None,
    progress: bool | Callable[[Progress], None] | None = None,
    data: str | Mapping[str, Any] | None = None,
    evaluator_options: Mapping[str, Any] | None = None,
    backend: str = "local",
    ray: Mapping[str, Any] | None = None,
    pruner: str = "none",
    prescreen: str | None = None,
    prescreen_keep: float = 0.25,
    latency: str | Mapping[str, Any] | None = None,
    limits: Mapping[str, float] | None = None,
    select: str | Mapping[str, Any] | None = None,
    baselines: str | Sequence[str] | None = RUN_DEFAULTS["baselines"],
    quantize: str = RUN_DEFAULTS["quantize"],
    **options: Any,
) -> SearchResult:
    """Run a search and return its trials and best architecture.

    ``space``: a shipped name, a YAML path or a SearchSpace (e.g. ``CategoricalSpace({...})``).
    ``evaluator``: a registered name (options in ``evaluator_options``) or any callable
    ``arch -> dict`` (``accuracy`` is maximised unless ``objectives`` says otherwise).
    ``options``: the strategy's options (``population=50``, ``sampler="tpe"``).
    ``objectives``: ``"accuracy"``, ``["accuracy", "latency_ms:min"]``...
    ``prescreen``: a zero-cost proxy (``"naswot"``...) that picks the best ``prescreen_keep`` share
    of the strategy's proposals for evaluation.
    ``pruner``: ``"median"`` or ``"asha"`` stops evaluations whose per-epoch reports trail the others.
    ``latency``: where each candidate's ``latency_ms`` comes from: ``"measured"``, ``"table"``,
    ``"learned"``, ``"none"`` or a dict of the run's latency settings (``{"name": "table",
    "threads": 1, "target_ms": 20}``); default ``auto`` (see ``nas run --help``).
    ``backend``: ``"ray"`` runs each evaluation as a Ray Tune trial; ``ray`` holds its settings
    (``{"workers": 2, "cpus_per_trial": 1, "address": "auto"}``, see ``nas run --help``).
    ``limits``: the largest network to build, ``{"max_params": 1e9, "max_activation_mb": 8192}``.
    ``select``: the selection stage, ``"none"`` or ``{"k": 8, "eta": 2, "repeats": 3}`` (see
    ``nas run --help``); ``baselines``: ``"auto"``, ``"none"`` or reference names / arch strings.
    A callable evaluator is repeated only when it takes a ``repeat`` keyword.
    ``quantize="int8"``: each trained candidate is also quantized and scored (``accuracy_int8``) and
    timed (``latency_int8_ms``); ``max_latency_ms`` then bounds the int8 latency.
    ``max_latency_ms``: a bound in ms, ``"baseline"`` (the latency of the first baseline, timed
    under the run's latency settings when the run starts) or None. The default ``"baseline"``
    applies where it costs nothing extra (an evaluator that trains, a baseline, networks to time,
    no latency objective), else the run is unbounded.
    ``out=None`` keeps the run in memory: nothing is written, and it cannot be resumed.
    ``progress``: True for a progress bar on stderr, or a callable receiving a ``Progress``.
    With ``resume=True`` the run ``run_id`` (default: the latest in ``out``) continues with its
    saved settings; ``budget``/``budget_hours`` may be raised.
    """
    for group, value, named in (("constraints", constraints, False), ("evaluator_options", evaluator_options, False),
                                ("data", data, True), ("ray", ray, False), ("latency", latency, True),
                                ("limits", limits, False), ("select", select, True)):
        _check_group(group, value, named)
    if not (baselines is None or isinstance(baselines, (str, list, tuple))):
        raise ConfigError(f"baselines: expected auto, none or a list of reference names / architecture "
                          f"strings, got {baselines!r}")  # resolve_baselines' words, before list() fails
    if out is not None:
        _check_out(out)
    cfg = run_defaults()
    cfg.update(
        seed=seed, out=None if out is None else str(out), budget=budget, budget_hours=budget_hours, resume=resume,
        run_id=run_id, backend=backend, pruner=pruner, prescreen=prescreen, prescreen_keep=prescreen_keep,
        max_params=max_params, max_macs=max_macs,
        max_latency_ms=RUN_DEFAULTS["max_latency_ms"] if max_latency_ms is DEFAULT_BOUND else max_latency_ms,
        progress=bool(progress), quantize=quantize,
    )
    if space is not None:
        cfg["space"] = space.name if isinstance(space, SearchSpace) else str(space)
    if objectives is not None:
        cfg["objectives"] = objectives if isinstance(objectives, (list, tuple)) else [objectives]
    if constraints is not None:
        cfg["constraints"] = dict(constraints)
    cfg["strategy"] = {"name": strategy, **options}
    space_obj = space if isinstance(space, SearchSpace) else None
    evaluator_obj = None
    if isinstance(evaluator, str):
        cfg["evaluator"] = {"name": evaluator, **dict(evaluator_options or {})}
    else:
        if evaluator_options:
            raise ConfigError("evaluator_options apply only to an evaluator given by name")
        if not callable(evaluator):  # None is no default: it would train the default evaluator unasked
            raise ConfigError(f"evaluator: expected a registered name or a callable arch -> metrics, "
                              f"got {evaluator!r}")
        evaluator_obj = evaluator
    if data is not None:
        cfg["data"] = {"name": data} if isinstance(data, str) else dict(data)
    if ray is not None:
        cfg["ray"].update(dict(ray))
    if latency is not None:
        given = {"name": latency} if isinstance(latency, str) else dict(latency)
        unknown_keys = set(given) - set(cfg["latency"])
        if unknown_keys:
            raise ConfigError(describe_choices("latency option", min(unknown_keys), list(cfg["latency"])))
        cfg["latency"].update(given)
    if limits is not None:
        cfg["limits"].update(dict(limits))
    if select is not None:
        cfg["select"] = {**cfg["select"], **({"name": select} if isinstance(select, str) else dict(select))}
    cfg["baselines"] = baselines if isinstance(baselines, (str, type(None))) else list(baselines)
    # What the caller chose (for resume: these must match the saved run, budgets excepted).
    explicit = {k for k, v in cfg.items() if k not in GROUPS and v != RUN_DEFAULTS.get(k)}
    explicit |= {f"strategy.{k}" for k in options}
    if max_latency_ms is not DEFAULT_BOUND:  # "baseline" given applies wherever it can, or errs
        explicit.add("max_latency_ms")
    if strategy != RUN_DEFAULTS["strategy"]["name"]:
        explicit.add("strategy.name")
    if isinstance(evaluator, str) and (evaluator != RUN_DEFAULTS["evaluator"]["name"] or evaluator_options):
        explicit |= {f"evaluator.{k}" for k in cfg["evaluator"]}
    if data is not None:
        explicit |= {f"data.{k}" for k in cfg["data"]}
    if constraints is not None:
        explicit.add("constraints")
    if ray is not None:
        explicit |= {f"ray.{k}" for k in ray}
    if latency is not None:
        explicit |= {f"latency.{k}" for k in ({"name": latency} if isinstance(latency, str) else latency)}
    if limits is not None:
        explicit |= {f"limits.{k}" for k in limits}
    if select is not None:
        explicit |= {f"select.{k}" for k in ({"name": select} if isinstance(select, str) else select)}
    on_trial = progress if callable(progress) else None
    if progress is True:
        return _with_progress_bar(cfg, explicit, space_obj, evaluator_obj)
    return start(cfg, explicit, space=space_obj, evaluator=evaluator_obj, on_trial=on_trial)


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
    from nas.progress import ProgressBar

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

    from evaluators.registry import as_evaluator, evaluator_options, make_evaluator
    from search_spaces.registry import load_space

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
        from evaluators.latency.source import WithLatency

        evaluator_obj = WithLatency(evaluator_obj, latency, mnas_reward(cfg, problem), problem.objectives[0].metric,
                                    int8=int8)
        problem = with_latency_estimate(problem, latency, int8)

    selection = Selection.from_options(cfg.get("select"))
    limits = BuildLimits.from_options(cfg["limits"])
    check_space_buildable(space_obj, limits)
    for baseline in found:
        if isinstance(baseline.arch, Architecture):  # a categorical space's members are plain dicts
            check_buildable(baseline.arch, limits=limits)

    from nas.strategies import make_strategy

    strategy_name = cfg["strategy"]["name"]
    strategy_opts = {k: v for k, v in cfg["strategy"].items() if k != "name"}
    strategy = make_strategy(strategy_name, space_obj, problem, seed, **strategy_opts)

    strategy.bind(cfg.get("data"), latency)  # DARTS trains a supernet on the run's data (checked here)
    from nas.backends import make_backend

    backend = make_backend(cfg["backend"], cfg.get("ray"))
    from nas.run.pruning import PRUNERS

    if cfg["pruner"] not in PRUNERS:
        raise unknown("pruner", cfg["pruner"], PRUNERS)
    screen = _prescreen_score(cfg, space_obj)
    given = cfg.get("run_id") not in (None, "")
    if not in_memory and rdir is None and given:
        rdir = run_dir(out, run_id_for(cfg, space_obj, strategy_name))
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
        from nas.strategies.prescreen import Prescreened

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
    import tempfile

    from nas.strategies import strategy_options

    name = cfg["strategy"]["name"]
    run_id = run_id_for(cfg, space, name)
    cfg["run_id"] = run_id
    with tempfile.TemporaryDirectory(prefix="nas-") as scratch:
        options = {k: v for k, v in cfg["strategy"].items() if k != "name"}
        if "workdir" in [opt for opt, _, _ in strategy_options(name)] and not options.get("workdir"):
            from nas.strategies import make_strategy

            strategy = make_strategy(name, space, problem, cfg["seed"], **{**options, "workdir": scratch})
        if screen is not None:
            from nas.strategies.prescreen import Prescreened

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
    from evaluators.zero_cost import PROXIES, ZeroCostEvaluator

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
    from nas.run.cheapest import check_reachable
    from nas.run.problem import CONSTRAINT_SHORTCUTS

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
    import random

    from search_spaces.arch import Architecture

    if not isinstance(space.sample(random.Random(0)), Architecture):
        return None
    from search_spaces.cost import cost

    num_classes = int(evaluator.num_classes)

    def estimate(arch: Any) -> dict[str, float]:
        c = cost(arch, num_classes)
        return {"params": c.params, "macs": c.macs}

    return estimate


def _with_run_storage(strategy, name, options, space, problem, seed, rdir: RunDir):
    """Give a strategy that keeps its own store (Optuna's ``storage``) a file in the run folder,
    and one that writes working files (NNI's ``workdir``) a folder in it."""
    from nas.strategies import make_strategy, strategy_options

    names = [opt for opt, _, _ in strategy_options(name)]
    if "storage" in names and not options.get("storage"):
        url = f"sqlite:///{(rdir.path / 'optuna.db').resolve()}"
        return make_strategy(name, space, problem, seed, **{**options, "storage": url})
    if "workdir" in names and not options.get("workdir"):
        return make_strategy(name, space, problem, seed, **{**options, "workdir": str(rdir.path / "nni")})
    return strategy
