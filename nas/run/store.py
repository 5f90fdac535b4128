"""Where a run keeps its trials and state while it runs: the ``RunStore`` interface and its two
kinds, a run folder on disk (``RunFiles``) or memory (``RunMemory``, ``out=None``).

``RunFiles`` keeps them in the folder of ``nas.run.folder`` (``trials.csv``, ``state.json``, the
shared leaderboard, ``best.yaml`` and plots), each file written by the crash-safe protocols of
``nas.run.files``. ``RunMemory`` keeps the same rows and state in the process: nothing is written,
nothing can be resumed, and a run on a tabular benchmark is not slowed by file system calls. The run
loop (``nas.run.runner``) and its checkpoint (``nas.run.checkpoint``) see only the interface.
"""
from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
from filelock import FileLock, Timeout

from nas.run.files import (
    TRIAL_COLUMNS,
    TRIAL_TAIL,
    append_leaderboard,
    append_rows,
    atomic_write_json,
    atomic_write_text,
    cell,
    leaderboard_keys,
    merged_header,
    read_rows,
    read_table,
    rewrite_rows,
)
from nas.run.folder import RunDir
from search_spaces.errors import NasError


class RunStore(Protocol):
    """What a run reads and writes while it runs; ``path``, ``out`` and ``dir`` are None in memory."""

    run_id: str
    path: Path | None  # the run's folder
    out: Path | None  # the results folder (its leaderboard)
    dir: RunDir | None  # the run's folder and the names of its files

    def lock(self) -> AbstractContextManager[None]:
        """Held while the run runs: one process per run."""

    def has_state(self) -> bool: ...

    def save_state(self, state: Mapping[str, Any]) -> None:
        """Replace the saved state (the commit point of ``nas.run.checkpoint``)."""

    def load_state(self) -> Any:
        """The saved state, None when there is none; OSError or ValueError when it cannot be read."""

    def append_trial(self, row: Mapping[str, Any]) -> None: ...

    def trials(self) -> pd.DataFrame:
        """The trials table, metric types inferred."""

    def trial_rows(self) -> list[dict[str, str]]:
        """Every complete trial row as the exact text of its cells."""

    def keep_trials(self, n: int) -> int | None:
        """Cut the trials back to the first ``n`` rows when there are more (a torn last line goes
        too); the number of complete rows there were, None when there is no trials table yet."""

    def append_leaderboard(self, rows: Sequence[Mapping[str, Any]]) -> None: ...

    def leaderboard_keys(self) -> set[str]:
        """The trial numbers (as text) of this run that the leaderboard has."""

    def write_text(self, name: str, text: str) -> None:
        """Write the file ``name`` of the run's folder."""


class RunFiles:
    """A run's folder ``<out>/runs/<run_id>/`` and the leaderboard of ``out``."""

    def __init__(self, run_dir: str | Path, out: str | Path | None = None) -> None:
        self.dir: RunDir = RunDir(Path(run_dir))
        self.out: Path = Path(out) if out is not None else self.dir.path.parent.parent

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

    def load_state(self) -> Any:
        if not self.dir.state.is_file():
            return None
        return json.loads(self.dir.state.read_text(encoding="utf-8"))

    def append_trial(self, row: Mapping[str, Any]) -> None:
        append_rows(self.dir.trials, [row], base=TRIAL_COLUMNS, tail=TRIAL_TAIL)

    def trials(self) -> pd.DataFrame:
        if not self.dir.trials.is_file():
            return pd.DataFrame(columns=list(TRIAL_COLUMNS))
        return read_table(self.dir.trials)

    def trial_rows(self) -> list[dict[str, str]]:
        return read_rows(self.dir.trials) if self.dir.trials.is_file() else []

    def keep_trials(self, n: int) -> int | None:
        path = self.dir.trials
        if not path.is_file():
            return None
        rows = read_rows(path)
        if len(rows) > n or (len(rows) == n and path.read_bytes()[-1:] not in (b"\n", b"")):
            kept = rows[:n]
            header = list(rows[0].keys()) if rows else list(TRIAL_COLUMNS + TRIAL_TAIL)
            # A column only the dropped row had must not survive it.
            header = [c for c in header if c in TRIAL_COLUMNS + TRIAL_TAIL or any(r.get(c) for r in kept)]
            rewrite_rows(path, kept, header)
        return len(rows)

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
    dir = None

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

    def load_state(self) -> Any:
        return self.state

    def append_trial(self, row: Mapping[str, Any]) -> None:
        self.header = merged_header(self.header, [row], TRIAL_TAIL)
        self.rows.append(dict(row))

    def trials(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.rows, columns=self.header)
        return frame.astype({"trial": int}) if len(frame) else frame

    def trial_rows(self) -> list[dict[str, str]]:
        return [{c: cell(row.get(c)) for c in self.header} for row in self.rows]

    def keep_trials(self, n: int) -> int | None:
        found = len(self.rows)
        del self.rows[n:]
        return found

    def append_leaderboard(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """No leaderboard: the caller has the trials."""

    def leaderboard_keys(self) -> set[str]:
        return set()

    def write_text(self, name: str, text: str) -> None:
        """Nothing is written."""
