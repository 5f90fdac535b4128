"""A run's folder ``<out>/runs/<run_id>/``: the names of its files, its id, claiming a new one, finding
one again, and its ``config.yaml``.

Names: a ``RunDir`` is the folder (its ``path`` and the paths of its files); ``run_folder(out, run_id)``
gives it; ``run_dir`` elsewhere (``SearchResult.run_dir``, ``Run(run_dir=...)``) is the folder's path.
How each file is written is ``nas.run.files``; what a run keeps there while it runs, ``nas.run.store``.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from nas.run.files import atomic_write_text
from nas.run.problem import parse_objectives
from nas.run.settings import resumable, run_defaults
from search_spaces.errors import ConfigError, NasError
from search_spaces.space import SearchSpace

# A run id names a folder: file systems refuse names over 255 bytes, and a path must stay usable.
MAX_RUN_ID = 128


@dataclass(frozen=True)
class RunDir:
    """The files of ``<out>/runs/<run_id>/``."""

    path: Path

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def trials(self) -> Path:
        return self.path / "trials.csv"

    @property
    def state(self) -> Path:
        return self.path / "state.json"

    @property
    def best(self) -> Path:
        return self.path / "best.yaml"

    @property
    def progress_plot(self) -> Path:
        return self.path / "progress.png"

    @property
    def pareto_plot(self) -> Path:
        return self.path / "pareto.png"

    @property
    def lock(self) -> Path:
        return self.path / ".lock"

    def exists(self) -> bool:
        return self.state.is_file() or self.config.is_file()


def run_folder(out: str | Path, run_id: str) -> RunDir:
    """The folder of run ``run_id`` in the results folder ``out`` (which may not exist yet)."""
    return RunDir(Path(out) / "runs" / run_id)


def run_id_for(cfg: Mapping[str, Any], space: SearchSpace, strategy: str) -> str:
    """The given run id (checked), or ``<date-time>-<space>-<strategy>``."""
    given = cfg.get("run_id")
    if given not in (None, ""):
        run_id = str(given)
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", run_id):
            raise ConfigError(f"run_id: use letters, digits, '_', '.', '-' (got {run_id!r})")
        if len(run_id) > MAX_RUN_ID:
            raise ConfigError(f"run_id: at most {MAX_RUN_ID} characters, got {len(run_id)}")
        return run_id
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", space.name)[:MAX_RUN_ID // 2]
    return f"{datetime.now():%Y%m%d-%H%M%S}-{name}-{strategy}"


def claim_new_run(out: Path, base: str) -> RunDir:
    """Create a fresh run folder; mkdir is atomic, so two runs started in the same second get
    different ids (``base``, ``base-2``, ...)."""
    (out / "runs").mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        rdir = run_folder(out, base if n == 1 else f"{base}-{n}")
        try:
            rdir.path.mkdir()
            return rdir
        except FileExistsError:
            n += 1


def find_run(out: str | Path, run_id: str | None, action: str = "resume") -> RunDir:
    """The run to ``action`` (resume, report): ``run_id`` in ``<out>/runs``, or the latest one;
    NasError if none."""
    runs = Path(out) / "runs"
    if run_id in (None, ""):
        candidates = sorted(
            (p for p in runs.glob("*/state.json")), key=lambda p: p.stat().st_mtime
        ) if runs.is_dir() else []
        if not candidates:
            raise NasError(f"nothing to {action}: no run in {runs} (give run_id=NAME)")
        run_id = candidates[-1].parent.name
    rdir = run_folder(out, str(run_id))
    if not rdir.state.is_file():
        raise NasError(f"cannot {action} run {run_id}: no such run in {runs} (looked for {rdir.state})")
    return rdir


def saved_config(rdir: RunDir, path: Path | None = None) -> dict[str, Any]:
    """A run's ``config.yaml`` (or the file ``path``); NasError when it cannot be read."""
    path = path or rdir.config
    try:
        saved = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        message = " ".join(str(exc).split())
        raise NasError(f"cannot read run config {path} ({message})") from None
    if not isinstance(saved, dict):
        raise NasError(f"run config {path} is not a mapping of settings")
    return saved


def resume_config(cfg: dict[str, Any], explicit: set[str], out: Path) -> tuple[dict[str, Any], RunDir]:
    """The saved config of the run to resume, with the keys that may change taken from ``cfg``."""
    rdir = find_run(out, cfg.get("run_id"))
    run_id = rdir.run_id
    # A config saved before max_latency_ms defaulted to baseline had no bound: it keeps none.
    merged = {**run_defaults(), "max_latency_ms": None, **saved_config(rdir)}
    may_change = resumable()
    for key in explicit:
        head, _, sub = key.partition(".")
        new = cfg[head] if not sub else (cfg.get(head) or {}).get(sub)
        old = merged.get(head) if not sub else (merged.get(head) or {}).get(sub)
        if head in may_change:
            merged[head] = cfg[head]
        elif new != old and not same_objectives(head, new, old):
            raise ConfigError(
                f"cannot change {key} when resuming run {run_id} (it was {old!r}, got {new!r})"
            )
    merged["run_id"], merged["resume"], merged["out"] = str(run_id), True, str(out)
    return merged, rdir


def same_objectives(head: str, new: Any, old: Any) -> bool:
    if head != "objectives":
        return False
    try:
        return parse_objectives(new) == parse_objectives(old)
    except NasError:
        return False


def write_config(rdir: RunDir, cfg: Mapping[str, Any], space: SearchSpace | None) -> None:
    saved = {k: v for k, v in cfg.items() if k != "resume"}
    choices = getattr(space, "choices", None)
    if space is not None and type(space).__name__ == "CategoricalSpace" and choices is not None:
        saved["space_choices"] = choices()  # a Python-made space: what it was, for the record
    try:
        text = yaml.safe_dump(saved, sort_keys=False)
    except yaml.YAMLError:
        saved.pop("space_choices", None)
        text = yaml.safe_dump(saved, sort_keys=False)
    atomic_write_text(rdir.config, text)
