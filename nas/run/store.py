"""Where a run keeps its trials and state: a run folder on disk, or memory (``out=None``).

``RunFiles`` is the folder of ``nas.run.folder`` (``trials.csv``, ``state.json``, the shared
leaderboard, ``best.yaml`` and plots, each written by that module's crash-safe protocols).
``RunMemory`` keeps the same rows and state in the process: nothing is written, nothing can be
resumed, and a run on a tabular benchmark is not slowed by file system calls.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from filelock import FileLock, Timeout

from nas.run.files import (
    TRIAL_COLUMNS,
    TRIAL_TAIL,
    append_leaderboard,
    append_rows,
    atomic_write_json,
    atomic_write_text,
    leaderboard_keys,
    merged_header,
    read_table,
)
from nas.run.folder import RunDir
from search_spaces.errors import NasError


class RunFiles:
    """A run's folder ``<out>/runs/<run_id>/`` and the leaderboard of ``out``."""

    def __init__(self, run_dir: str | Path, out: str | Path | None = None) -> None:
        self.dir = RunDir(Path(run_dir))
        self.out = Path(out) if out is not None else self.dir.path.parent.parent

    @property
    def run_id(self) -> str:
        return self.dir.run_id

    @property
    def path(self) -> Path:
        return self.dir.path

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run's lock file: one process per run."""
        self.dir.path.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.dir.lock), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise NasError(f"run {self.run_id} is in use by another process ({self.dir.path})") from None
        try:
            yield
        finally:
            lock.release()

    def has_state(self) -> bool:
        return self.dir.state.exists()

    def save_state(self, state: Mapping[str, Any]) -> None:
        atomic_write_json(self.dir.state, state)

    def append_trial(self, row: Mapping[str, Any]) -> None:
        append_rows(self.dir.trials, [row], base=TRIAL_COLUMNS, tail=TRIAL_TAIL)

    def trials(self) -> pd.DataFrame:
        if not self.dir.trials.is_file():
            return pd.DataFrame(columns=list(TRIAL_COLUMNS))
        return read_table(self.dir.trials)

    def append_leaderboard(self, rows: Sequence[Mapping[str, Any]]) -> None:
        append_leaderboard(self.out, rows)

    def leaderboard_keys(self) -> set[str]:
        return leaderboard_keys(self.out, self.run_id)

    def write_text(self, name: str, text: str) -> None:
        atomic_write_text(self.dir.path / name, text)



class RunMemory:
    """A run kept in this process only (``nas.search(..., out=None)``)."""

    path = None
    out = None

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.rows: list[dict[str, Any]] = []
        self.header: list[str] = list(TRIAL_COLUMNS)
        self.state: dict[str, Any] | None = None

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        yield

    def has_state(self) -> bool:
        return self.state is not None

    def save_state(self, state: Mapping[str, Any]) -> None:
        self.state = dict(state)

    def append_trial(self, row: Mapping[str, Any]) -> None:
        self.header = merged_header(self.header, [row], TRIAL_TAIL)
        self.rows.append(dict(row))

    def trials(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.rows, columns=self.header)
        return frame.astype({"trial": int}) if len(frame) else frame

    def append_leaderboard(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """No leaderboard: the caller has the trials."""

    def leaderboard_keys(self) -> set[str]:
        return set()

    def write_text(self, name: str, text: str) -> None:
        """Nothing is written."""
