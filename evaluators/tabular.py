"""Tabular benchmark evaluators: look up the accuracy a benchmark measured instead of training.

``NasBenchMacro`` reads NAS-Bench-Macro (Su et al., CVPR 2021; 6,561 CIFAR-10 networks, each
trained three times). The file is data, not part of the project: its path comes from the
``path`` option (``evaluator.path=...`` on the command line) or the ``NAS_BENCH_MACRO`` variable.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from evaluators.base import Evaluator, Reporter
from search_spaces.errors import NasError, SpaceError
from search_spaces.registry import load_space
from search_spaces.space import SearchSpace

ENV_VAR = "NAS_BENCH_MACRO"
_FIELDS = ("mean_acc", "std", "params", "flops")


@lru_cache(maxsize=4)
def _load_table(path: str, mtime_ns: int, size: int) -> dict[str, dict[str, Any]]:
    """Parse and check the table once per file version (``mtime_ns``/``size`` key the cache).

    Rows keep the file's own fields (``mean_acc``, ``std``, ``params``, ``flops``, ``test_acc``).
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise NasError(f"cannot read NAS-Bench-Macro table {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise NasError(f"NAS-Bench-Macro table {path} is malformed: not JSON ({exc})") from None
    if not isinstance(data, dict) or not data:
        raise NasError(
            f"NAS-Bench-Macro table {path} is malformed: expected an object of 8-digit keys"
        )
    for key, row in data.items():
        if not isinstance(row, Mapping) or any(f not in row for f in _FIELDS):
            raise NasError(
                f"NAS-Bench-Macro table {path} is malformed: entry {key!r} needs "
                f"{', '.join(_FIELDS)}"
            )
        if not all(_is_number(row[f]) for f in _FIELDS):
            raise NasError(
                f"NAS-Bench-Macro table {path} is malformed: entry {key!r} has a non-number"
            )
    return data


def _offset(seed: int, key: str) -> int:
    """Which stored run a network's repeat 0 reads: a stable hash of (seed, key)."""
    digest = hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def resolve_path(path: str | os.PathLike[str] | None) -> Path:
    """The table's path from the option or the environment; NasError saying both ways if absent."""
    given = path if path not in (None, "") else os.environ.get(ENV_VAR)
    if not given:
        raise NasError(
            f"evaluator nasbench_macro needs the benchmark file: give evaluator.path=FILE "
            f"(Python: path=FILE) or set {ENV_VAR}=FILE"
        )
    resolved = Path(given).expanduser()
    if not resolved.is_file():
        via = "evaluator.path" if path not in (None, "") else ENV_VAR
        raise NasError(
            f"NAS-Bench-Macro file {resolved} (from {via}) does not exist: give evaluator.path=FILE "
            f"or set {ENV_VAR}=FILE"
        )
    return resolved


class NasBenchMacro(Evaluator):
    """``NasBenchMacro(path)(arch) -> {accuracy, bench_std, params, macs}`` from the table.

    ``accuracy`` is the mean CIFAR-10 test accuracy (percent) of the three runs, ``bench_std``
    their standard deviation as the table stores it, ``macs`` the table's ``flops`` (which counts
    multiply-accumulates). ``arch`` must be a member of the ``nasbench_macro`` space (an
    Architecture or its string); it is looked up by the space's 8-digit code.

    ``noisy=True`` returns one stored training run's accuracy instead of the mean, as a real
    evaluation would: repeat ``r`` of a network reads run ``(o + r) mod 3``, where the offset ``o``
    is drawn from (``seed``, the network), so three repeats read all three runs and their mean
    is the table's.
    """

    name = "nasbench_macro"
    num_classes = 10

    def __init__(self, path: str | os.PathLike[str] | None = None, noisy: bool = False,
                 seed: int = 0) -> None:
        if not isinstance(noisy, bool):
            raise NasError(f"noisy: must be true or false, got {noisy!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise NasError(f"seed: must be an integer, got {seed!r}")
        self.noisy = noisy
        self.seed = seed
        self.path = resolve_path(path)
        stat = self.path.stat()
        self.table = _load_table(str(self.path.resolve()), stat.st_mtime_ns, stat.st_size)
        self.space = load_space("nasbench_macro")

    def key(self, arch: Any) -> str:
        """The benchmark's 8-digit key of ``arch``; NasError if it is not in the space."""
        if isinstance(arch, str):
            arch = self.space.from_string(arch)
        to_key = getattr(self.space, "key_of", None) or self.space.code
        try:
            return to_key(arch)
        except SpaceError as exc:
            raise NasError(f"evaluator nasbench_macro: not a nasbench_macro architecture: {exc}") from None

    def check_space(self, space: SearchSpace) -> None:
        """Fail before a run starts when ``space``'s members cannot be looked up in the table."""
        try:
            self.key(space.sample(random.Random(0)))
        except NasError:
            raise NasError(
                f"evaluator nasbench_macro scores only architectures of the nasbench_macro space, "
                f"not of space {space.name!r}"
            ) from None

    def __call__(self, arch: Any, report: Reporter | None = None, repeat: int = 0) -> dict[str, float]:
        key = self.key(arch)
        row = self.table.get(key)
        if row is None:
            raise NasError(f"architecture {key} is not in the NAS-Bench-Macro table {self.path}")
        accuracy = float(row["mean_acc"])
        if self.noisy:
            runs = row.get("test_acc")
            if not isinstance(runs, list) or not runs or not all(_is_number(v) for v in runs):
                raise NasError(f"NAS-Bench-Macro table {self.path}: entry {key!r} has no test_acc "
                               "list of runs, which noisy=true reads")
            accuracy = float(runs[(_offset(self.seed, key) + repeat) % len(runs)])
        return {
            "accuracy": accuracy,
            "bench_std": float(row["std"]),
            "params": int(row["params"]),
            "macs": int(row["flops"]),
        }

    def __repr__(self) -> str:
        return f"NasBenchMacro({str(self.path)!r})"
