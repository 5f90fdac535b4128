"""Retrain the winner: full training of one architecture on Ray Train, resumable, exported.

``retrain`` runs a ``ray.train.torch.TorchTrainer`` (DDP over ``workers`` processes; gloo on CPU,
NCCL on GPU) whose loop reuses the proxy's training helpers (``evaluators.training``) with a
longer recipe: warm-up + cosine, label smoothing, RandAugment/AutoAugment, EMA, bf16 autocast and
channels_last on CUDA; dropout and stochastic depth come from the architecture string. Every epoch
rank 0 reports a checkpoint; a run started again with the same ``run_id`` (``resume=True``) gets
the latest one back from Ray Train (its storage is ``<out>/retrain/<run_id>/``) and continues.

Files of ``<out>/retrain/<run_id>/``: ``retrain.yaml`` (settings, enough to resume),
``checkpoint_*/state.pt`` (Ray Train's, the two latest), ``model.pt`` (``load_model``),
optional exports (``nas.deploy.export``: ``model.torchscript.pt``, ``model.onnx``,
``model.int8.torchscript.pt``), and ``result.yaml`` written last.
"""
from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
import yaml

from evaluators.base import DEFAULT_DATA
from evaluators.data import DataSplits, dataset_from_options
from nas.archs import resolve_arch
from nas.backends.ray_cluster import connect, fit_on_workers, train_scaling
from nas.deploy.export import EXPORTS, Exported, export_model, load_model
from nas.deploy.retrain_recipe import EXECUTION_FIELDS, RetrainRecipe, make_recipe
from nas.deploy.retrain_worker import restore, train_loop
from nas.run.files import append_leaderboard, atomic_write_text
from search_spaces.arch import Architecture
from search_spaces.cost import cost
from search_spaces.errors import ConfigError, NasError, unknown
from search_spaces.limits import NO_LIMITS, BuildLimits, check_buildable

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class RetrainResult:
    """What a finished retrain leaves: its scores and where its files are."""

    run_id: str
    dir: Path
    arch: str
    source: str
    test_accuracy: float  # top-1 % on the held-out test split
    val_accuracy: float
    epochs: int
    start_epoch: int  # epochs already done when this call's training began (0: from scratch)
    resolution: int
    params: int
    macs: int
    train_s: float  # seconds inside epochs, summed over every attempt
    wall_s: float  # this call
    model: Path
    checkpoint: Path | None
    exports: dict[str, str] = field(default_factory=dict)
    history: tuple[dict[str, float], ...] = ()
    test_accuracy_int8: float | None = None  # top-1 % of model.int8.torchscript.pt on the test split


# -- which architecture ----------------------------------------------------------------------------
def resolve_source(
    arch: str | Architecture | None = None, out: str | Path = "results", run: str | None = None,
    family: str | Path | None = None, phi: int | None = None, limits: Mapping[str, Any] | None = None,
) -> tuple[Architecture, str]:
    """The architecture to retrain and a note of where it came from: an arch string, reference
    name or file; the best of search ``run``; or member ``phi`` of a ``nas scale`` family file.
    Refused when larger than ``limits`` (``{"max_params": ..., "max_activation_mb": ...}``)."""
    chosen, source = _source(arch, out, run, family, phi)
    check_buildable(chosen, limits=BuildLimits.from_options(limits or {}))
    return chosen, source


def _source(arch: str | Architecture | None, out: str | Path, run: str | None, family: str | Path | None,
            phi: int | None) -> tuple[Architecture, str]:
    given = [name for name, value in (("ARCH", arch), ("run", run), ("family", family)) if value is not None]
    if len(given) != 1:
        raise ConfigError("architecture: give exactly one of ARCH, run=ID, family=FILE phi=N"
                          + (f" (got {', '.join(given)})" if given else ""))
    if (phi is None) != (family is None):
        raise ConfigError("phi: family=FILE and phi=N go together")
    if isinstance(arch, Architecture):
        return arch, "arch"
    if arch is not None:  # a reference name or file names itself; a string is its own record
        # checked by resolve_source against the caller's limits
        return resolve_arch(str(arch), limits=NO_LIMITS)[0], "arch" if ":" in str(arch) else str(arch)
    if run is not None:
        return _best_of_run(Path(out), str(run)), f"run={run}"
    return _family_member(Path(str(family)), phi), f"family={family} phi={phi}"


def _read_yaml(path: Path, what: str) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{what}: no file {path}") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{what}: cannot read {path} ({' '.join(str(exc).split())[:160]})") from None


def _best_of_run(out: Path, run_id: str) -> Architecture:
    path = out / "runs" / run_id / "best.yaml"
    if not path.is_file():
        runs = out / "runs"
        names = sorted(p.name for p in runs.iterdir() if (p / "best.yaml").is_file()) if runs.is_dir() else []
        if not names:
            raise NasError(f"run {run_id}: no {path} (a search writes it: nas run ...)")
        raise unknown("run", run_id, names)
    best = (_read_yaml(path, "run") or {}).get("best")
    if not isinstance(best, Mapping) or not best.get("arch"):
        raise NasError(f"run {run_id} has no successful trial to retrain ({path})")
    return Architecture.parse(str(best["arch"]))


def _family_member(path: Path, phi: int | None) -> Architecture:
    loaded = _read_yaml(path, "family")
    members = loaded.get("members") if isinstance(loaded, Mapping) else None
    if not isinstance(members, list):
        raise ConfigError(f"family: {path} is not a family file of nas scale (members: [{{phi, arch}}, ...])")
    # members of explicit (width, depth) pairs have phi null: only compound members have a phi
    found = {m["phi"]: m.get("arch") for m in members if isinstance(m, Mapping) and m.get("phi") is not None}
    if phi not in found:
        raise unknown("phi", phi, sorted(found, key=str))
    return Architecture.parse(str(found[phi]))


# -- the driver ------------------------------------------------------------------------------------
def _start_ray(address: str | None, workers: int, cpus_per_worker: int | None, progress: bool) -> bool:
    """Join or start Ray; True when this call started it (and must shut it down)."""
    cpus = max(os.cpu_count() or 1, workers * (cpus_per_worker or 1))
    return connect(address, num_cpus=cpus, log_to_driver=progress)


def _scaling(recipe: RetrainRecipe) -> Any:
    return train_scaling(recipe.workers, recipe.use_gpu, recipe.cpus_per_worker)


def _fit(settings: dict[str, Any], recipe: RetrainRecipe, scaling: Any, rdir: Path, progress: bool) -> Any:
    """Run the TorchTrainer; Ray Train restores the latest checkpoint stored under ``rdir``."""
    config = {"arch": settings["arch"], "data": settings["data"], "resolution": settings["resolution"],
              "recipe": asdict(recipe), "run_id": rdir.name, "progress": progress}
    result = fit_on_workers(train_loop, config, scaling, name=rdir.name, storage=rdir.parent,
                            max_failures=recipe.max_failures, keep=2,
                            what=f"retrain {rdir.name}",
                            resume=f"nas retrain resume=true run_id={rdir.name} out={rdir.parent.parent}")
    if result.checkpoint is None:
        raise NasError(f"retrain {rdir.name} finished without a checkpoint in {rdir}")
    return result.checkpoint


def _retrain_folder(out: Path, run_id: str | None, resume: bool, space: str | None) -> Path:
    """The retrain's folder ``<out>/retrain/<id>``: a new one (claimed with an atomic mkdir) or, to
    resume, an existing one."""
    base = out / "retrain"
    if run_id is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", run_id):
        raise ConfigError(f"run_id: use letters, digits, '_', '.', '-' (got {run_id!r})")
    if resume:
        if run_id is None:
            saved = sorted(base.glob("*/retrain.yaml"), key=lambda p: p.stat().st_mtime) if base.is_dir() else []
            if not saved:
                raise NasError(f"nothing to resume: no retrain in {base} (give run_id=NAME)")
            return saved[-1].parent
        if not (base / run_id / "retrain.yaml").is_file():
            raise NasError(f"cannot resume retrain {run_id}: no {base / run_id / 'retrain.yaml'}")
        return base / run_id
    if run_id is not None:
        if (base / run_id).exists():
            raise ConfigError(f"run_id: {base / run_id} exists; continue it with resume=true run_id={run_id}, "
                              "or choose another run_id")
        return base / run_id
    stem = f"{datetime.now():%Y%m%d-%H%M%S}-{space}-retrain"
    n = 1
    while (base / (stem if n == 1 else f"{stem}-{n}")).exists():
        n += 1
    return base / (stem if n == 1 else f"{stem}-{n}")


def _settings(arch: Architecture, source: str, recipe: RetrainRecipe, data: Mapping[str, Any]) -> dict[str, Any]:
    return {"arch": str(arch), "source": source, "resolution": recipe.resolution or arch.resolution,
            "data": dict(data), "recipe": asdict(recipe)}


def _resumed_settings(rdir: Path, arch: Architecture | None, recipe: RetrainRecipe | Mapping[str, Any] | None,
                      data: Mapping[str, Any] | None) -> tuple[dict[str, Any], RetrainRecipe]:
    """The saved settings; only execution settings (workers, GPUs, ...) may change."""
    saved = _read_yaml(rdir / "retrain.yaml", "resume")
    base = RetrainRecipe(**saved["recipe"])
    overrides = asdict(recipe) if isinstance(recipe, RetrainRecipe) else dict(recipe or {})
    recipe_now = make_recipe(overrides, base)
    for name in overrides:
        if name not in EXECUTION_FIELDS and getattr(recipe_now, name) != getattr(base, name):
            raise ConfigError(f"{name}: cannot change when resuming (saved {getattr(base, name)!r}, "
                              f"given {getattr(recipe_now, name)!r}); only {', '.join(EXECUTION_FIELDS)} may")
    if arch is not None and str(arch) != saved["arch"]:
        raise ConfigError(f"architecture: retrain {rdir.name} trains {saved['arch']}, not {arch}")
    if data is not None and dict(data) != saved["data"]:
        raise ConfigError(f"data: cannot change when resuming (saved {saved['data']}, given {dict(data)})")
    saved["recipe"] = asdict(recipe_now)
    return saved, recipe_now


def retrain(
    arch: str | Architecture | None = None,
    recipe: RetrainRecipe | Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
    out: str | Path = "results",
    run_id: str | None = None,
    export: Sequence[str] = (),
    resume: bool = False,
    run: str | None = None,
    family: str | Path | None = None,
    phi: int | None = None,
    ray_address: str | None = None,
    progress: bool = False,
    limits: Mapping[str, Any] | None = None,
) -> RetrainResult:
    """Train one architecture fully on Ray Train; write ``model.pt`` and one leaderboard row.

    ``recipe``: a RetrainRecipe or overrides of its defaults (of the saved recipe when resuming).
    ``resume=True`` continues ``run_id`` (default: the latest retrain in ``out``) from its last
    checkpoint; a finished one is returned as it is (plus any export asked for). ``limits``: the
    largest network to build (``{"max_params": 1e9, "max_activation_mb": 8192}``).
    """
    begin = time.perf_counter()
    out = Path(out).resolve()
    export = [export] if isinstance(export, str) else list(export)
    bad = [e for e in export if e not in EXPORTS]
    if bad:
        raise unknown("export", bad[0], EXPORTS)
    chosen = None
    if (arch, run, family) != (None, None, None) or not resume:
        chosen, source = resolve_source(arch, out, run, family, phi, limits)
    if resume:
        rdir = _retrain_folder(out, run_id, True, None)
        settings, recipe = _resumed_settings(rdir, chosen, recipe, data)
    else:
        recipe = recipe if isinstance(recipe, RetrainRecipe) else make_recipe(recipe or {})
        settings = _settings(chosen, source, recipe, data or DEFAULT_DATA)
        rdir = _retrain_folder(out, run_id, False, chosen.space)
    splits = dataset_from_options(settings["data"])  # bad data options fail here, before any file
    if (rdir / "result.yaml").is_file():
        log.info("retrain %s is finished already", rdir.name)
        return _finish(rdir, settings, None, export, begin, splits)

    started = _start_ray(ray_address, recipe.workers, recipe.cpus_per_worker, progress)
    try:
        scaling = _scaling(recipe)  # checks the GPUs asked for against the cluster's, before any file
        rdir.mkdir(parents=True, exist_ok=resume)
        atomic_write_text(rdir / "retrain.yaml", yaml.safe_dump(settings, sort_keys=False, width=10_000))
        checkpoint = _fit(settings, recipe, scaling, rdir, progress)
    finally:
        if started:
            import ray  # noqa: PLC0415 - Ray: only to train (load_model needs none)

            ray.shutdown()
    return _finish(rdir, settings, checkpoint, export, begin, splits)


def _finish(rdir: Path, settings: dict[str, Any], checkpoint: Any, export: Sequence[str], begin: float,
            splits: DataSplits) -> RetrainResult:
    """model.pt, exports, the leaderboard row and result.yaml (last: it marks the run finished)."""
    done = rdir / "result.yaml"
    if checkpoint is None:  # finished before: rebuild the result from its files
        summary = _read_yaml(done, "result")
        _record(summary, export_model(rdir / "model.pt", export, splits))
        atomic_write_text(done, yaml.safe_dump(summary, sort_keys=False, width=10_000))
        return _result(summary, rdir, time.perf_counter() - begin)
    num_classes = splits.num_classes
    state = restore(checkpoint)
    last = state["history"][-1]
    arch = Architecture.parse(settings["arch"])
    c = cost(arch, num_classes)
    weights = state["ema"] if state["ema"] is not None else state["model"]
    if state["ema"] is not None:  # AveragedModel keeps the averaged network under "module."
        weights = {k.removeprefix("module."): v for k, v in weights.items() if k.startswith("module.")}
    package = {
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in weights.items()},
        "arch": settings["arch"], "num_classes": num_classes, "resolution": settings["resolution"],
        "test_accuracy": float(last["test_accuracy"]), "val_accuracy": float(last["val_accuracy"]),
        "epochs": int(last["epoch"]), "data": str(settings["data"].get("name", "digits")),
    }
    tmp = rdir / ".model.pt.tmp"
    torch.save(package, tmp)
    os.replace(tmp, rdir / "model.pt")
    wall = time.perf_counter() - begin
    recipe = settings["recipe"]
    summary = {
        "run_id": rdir.name, "arch": settings["arch"], "source": settings["source"],
        "test_accuracy": float(last["test_accuracy"]), "val_accuracy": float(last["val_accuracy"]),
        "epochs": int(last["epoch"]), "start_epoch": int(last["start_epoch"]),
        "resolution": settings["resolution"], "params": c.params, "macs": c.macs,
        "train_s": float(state["train_s"]), "wall_s": wall, "checkpoint": str(Path(checkpoint.path)),
        "exports": {},
        "history": [{k: v if isinstance(v, int) else float(v) for k, v in h.items()} for h in state["history"]],
    }
    append_leaderboard(rdir.parent.parent, [{
        "run_id": rdir.name, "stage": "retrain", "space": arch.space, "strategy": "retrain",
        "evaluator": "retrain", "arch": settings["arch"], "status": "ok", "accuracy": summary["test_accuracy"],
        "val_accuracy": summary["val_accuracy"], "epochs": summary["epochs"], "params": c.params,
        "macs": c.macs, "train_resolution": settings["resolution"], "wall_s": wall, "seed": recipe["seed"],
        "timestamp": datetime.now().isoformat(timespec="seconds"), "source": settings["source"],
    }])
    try:
        _record(summary, export_model(rdir / "model.pt", export, splits))
    finally:  # the training is done even when an export fails: resume=true export=[...] retries it
        atomic_write_text(done, yaml.safe_dump(summary, sort_keys=False, width=10_000))
    return _result(summary, rdir, wall)


def _record(summary: dict[str, Any], exported: Exported) -> None:
    """Add the files written (and the int8 test top-1) to a run's summary."""
    summary["exports"] = {**summary.get("exports", {}), **exported.files}
    if exported.test_accuracy_int8 is not None:
        summary["test_accuracy_int8"] = exported.test_accuracy_int8


def _result(summary: Mapping[str, Any], rdir: Path, wall: float) -> RetrainResult:
    checkpoint = summary.get("checkpoint")
    return RetrainResult(
        run_id=rdir.name, dir=rdir, arch=summary["arch"], source=summary["source"],
        test_accuracy=summary["test_accuracy"], val_accuracy=summary["val_accuracy"],
        epochs=summary["epochs"], start_epoch=summary["start_epoch"], resolution=summary["resolution"],
        params=summary["params"], macs=summary["macs"], train_s=summary["train_s"], wall_s=wall,
        model=rdir / "model.pt", checkpoint=Path(checkpoint) if checkpoint else None,
        exports=dict(summary.get("exports", {})), history=tuple(summary.get("history", ())),
        test_accuracy_int8=summary.get("test_accuracy_int8"),
    )


__all__ = ["RetrainRecipe", "RetrainResult", "load_model", "make_recipe", "resolve_source", "retrain"]
