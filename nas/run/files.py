"""Files a crash never leaves half-written: atomic whole files, CSV tables that grow by appending,
and the leaderboard every run in a results folder shares.

Write protocols (why each file can never be left half-written):

- ``state.json``, ``config.yaml``, ``best.yaml`` and the plots are written to a temporary file in the
  same folder and moved over the old one with ``os.replace`` (atomic on POSIX): a reader or a
  resumed run sees the old version or the new one, never a mix.
- ``trials.csv`` and ``leaderboard.csv`` grow by *appending complete lines* (one ``os.write`` of
  whole rows, values sanitised so no cell holds a newline). Appending keeps a checkpoint O(1) per
  trial instead of rewriting the whole table, which matters for tabular benchmarks that run
  thousands of trials a minute. Only when a row brings a column the header lacks (rows from
  different evaluators coexist: union of columns) is the table rewritten, through a temporary file
  and ``os.replace``, copying earlier rows as text so they keep their exact bytes.
- the leaderboard is shared by every run in ``<out>``, so each append or rewrite happens under a
  ``filelock.FileLock`` (flock: released by the OS if the holder is killed). A writer killed in the
  middle of a write can leave at most a torn last line without a newline; the next writer cuts it
  off before appending, so it never merges with a good row.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from filelock import FileLock, Timeout

from search_spaces.errors import NasError

# Columns every leaderboard row has, in this order; metric columns a run adds follow them.
LEADERBOARD_COLUMNS = (
    "run_id", "trial", "space", "strategy", "evaluator", "arch", "stage", "repeat", "status", "accuracy",
    "latency_ms", "params", "macs", "wall_s", "seed", "timestamp", "error",
)
TRIAL_COLUMNS = ("trial", "arch", "repeat", "stage", "status")  # first columns of trials.csv; metrics follow
TRIAL_TAIL = ("wall_s", "timestamp", "error")  # kept last when a new metric column appears
LOCK_TIMEOUT_S = 120.0


# -- atomic whole-file writes -------------------------------------------------------------------
def _file_mode() -> int:
    # mkstemp creates 0600 files; results are meant to be shared like any file the user writes.
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_MODE = _file_mode()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, _MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _naming(exc, path) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _naming(exc: OSError, path: Path) -> OSError:
    """``exc`` with the file it concerns (os.write's errors name none)."""
    if exc.filename:
        return exc
    return type(exc)(exc.errno, exc.strerror or str(exc), str(path))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data: Any) -> None:
    # allow_nan: metrics may legitimately be NaN/inf; Python's json reads them back.
    atomic_write_text(path, json.dumps(data, separators=(",", ":"), allow_nan=True) + "\n")


# -- CSV cells and lines -------------------------------------------------------------------------
def cell(value: Any) -> str:
    """The CSV text of one value: '' for missing/NaN, repr for floats (round-trips exactly)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        return cell(value.item())
    # One row per line is what lets a torn write be detected and cut off: no newlines in cells.
    return " ".join(str(value).splitlines())


def _lines(rows: Iterable[Mapping[str, Any]], header: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        writer.writerow([cell(row.get(column)) for column in header])
    return buffer.getvalue()


def _header_line(header: Sequence[str]) -> str:
    return _lines([{c: c for c in header}], header)


def read_header(path: Path) -> list[str] | None:
    """The column names of a CSV table, or None when the file is missing or empty."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            first = handle.readline()
    except FileNotFoundError:
        return None
    if not first.endswith("\n"):
        return None  # no complete header line: treat as empty
    return next(csv.reader([first]))


def _cut_torn_tail(path: Path) -> None:
    """Drop a last line without newline (left by a writer killed mid-write)."""
    with open(path, "rb+") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        if size == 0:
            return
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return
        block = min(size, 1 << 16)
        while True:
            handle.seek(size - block)
            data = handle.read(block)
            cut = data.rfind(b"\n")
            if cut >= 0 or block == size:
                handle.truncate(size - block + cut + 1 if cut >= 0 else 0)
                return
            block = min(size, block * 2)


def _write_all(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except OSError as exc:
        raise _naming(exc, path) from exc
    finally:
        os.close(fd)


def merged_header(
    old: Sequence[str], rows: Iterable[Mapping[str, Any]], tail: Sequence[str] = ()
) -> list[str]:
    """``old`` plus new columns in order of first appearance; ``tail`` columns stay last."""
    header = [c for c in old if c not in tail]
    for row in rows:
        for column in row:
            if column not in header and column not in tail:
                header.append(column)
    return header + [c for c in tail if c in old or any(c in row for row in rows)]


def append_rows(
    path: Path, rows: Sequence[Mapping[str, Any]], base: Sequence[str] = (), tail: Sequence[str] = ()
) -> None:
    """Append ``rows`` to the CSV table at ``path`` (not locked: callers that share it lock).

    New columns extend the header (``base`` columns first, ``tail`` columns last): then the whole
    table is rewritten atomically, earlier rows copied as text.
    """
    path = Path(path)
    rows = list(rows)
    if not rows:
        return
    old = read_header(path)
    if old is not None:
        _cut_torn_tail(path)
    header = merged_header(old if old is not None else list(base) + list(tail), rows, tail)
    if old is not None and header == old:
        _write_all(path, _lines(rows, header).encode("utf-8"))
        return
    text = io.StringIO()
    text.write(_header_line(header))
    if old is not None:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            next(reader, None)
            for values in reader:
                text.write(_lines([dict(zip(old, values))], header))
    text.write(_lines(rows, header))
    atomic_write_text(path, text.getvalue())


def read_rows(path: Path) -> list[dict[str, str]]:
    """Every complete row as a dict of strings (exact text, nothing inferred)."""
    with open(path, newline="", encoding="utf-8") as handle:
        data = handle.read()
    if data and not data.endswith("\n"):
        data = data[: data.rfind("\n") + 1]
    return list(csv.DictReader(io.StringIO(data)))


def rewrite_rows(path: Path, rows: Sequence[Mapping[str, Any]], header: Sequence[str]) -> None:
    atomic_write_text(Path(path), _header_line(header) + _lines(rows, header))


# Columns read as text whatever they look like (a run id "007" must not become 7).
TEXT_COLUMNS = ("run_id", "space", "strategy", "evaluator", "arch", "stage", "status", "timestamp", "error")


def read_table(path: Path) -> pd.DataFrame:
    """A CSV table as a DataFrame (metric types inferred); an empty frame when it has no header."""
    try:
        return pd.read_csv(path, dtype={c: str for c in TEXT_COLUMNS}, on_bad_lines="skip")
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


# -- the leaderboard shared by all runs ------------------------------------------------------------
def leaderboard_path(out: str | Path) -> Path:
    return Path(out) / "leaderboard.csv"


def _lock(path: Path) -> FileLock:
    return FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT_S)


def append_leaderboard(out: str | Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append rows to ``<out>/leaderboard.csv`` under its file lock (safe across processes)."""
    path = leaderboard_path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _lock(path):
            append_rows(path, rows, base=LEADERBOARD_COLUMNS)
    except Timeout:
        raise NasError(f"leaderboard {path} stayed locked for {LOCK_TIMEOUT_S:.0f} s") from None


def leaderboard_keys(out: str | Path, run_id: str) -> set[str]:
    """The trial numbers (as text) a run already has on the leaderboard."""
    path = leaderboard_path(out)
    if not path.is_file():
        return set()
    with _lock(path):
        return {r.get("trial", "") for r in read_rows(path) if r.get("run_id") == run_id}


def read_leaderboard(out: str | Path) -> pd.DataFrame:
    """The whole leaderboard as a DataFrame; NasError when there is none."""
    path = leaderboard_path(out)
    if not path.is_file():
        raise NasError(f"no leaderboard at {path} (a run writes it: nas run ...)")
    with _lock(path):
        return read_table(path)
