"""Evaluators for the Ray backend tests: module-level classes, so Ray workers can unpickle them."""
from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SPACE = {"a": list(range(6)), "b": list(range(6)), "c": ["x", "y", "z"]}


def score(arch: Mapping[str, Any]) -> dict[str, float]:
    return {"accuracy": (arch["a"] * 7 + arch["b"] * 3 + len(arch["c"])) % 11 / 10 + arch["a"] / 100,
            "params": 1000 * (arch["a"] + 1)}


def _log(folder: str | None, line: str) -> None:
    if folder is not None:
        with open(Path(folder) / "attempts.log", "a", encoding="utf-8") as f:
            f.write(line + "\n")


class Scored:
    """``score`` after ``sleep`` seconds; logs when each evaluation starts and ends, and where."""

    name = "scored"

    def __init__(self, sleep: float = 0.0, log_dir: str | None = None) -> None:
        self.sleep, self.log_dir = sleep, log_dir

    def __call__(self, arch: Mapping[str, Any], report: Any = None) -> dict[str, float]:
        start = time.time()
        time.sleep(self.sleep)
        _log(self.log_dir, f"{os.getpid()} {start:.3f} {time.time():.3f} {arch['a']}{arch['b']}{arch['c']}")
        return score(arch)


class DiesOnce:
    """The first evaluation writes its pid and waits to be killed; every other one scores at once."""

    name = "dies_once"

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def __call__(self, arch: Mapping[str, Any], report: Any = None) -> dict[str, float]:
        folder = Path(self.folder)
        _log(self.folder, f"{os.getpid()} {arch['a']}{arch['b']}{arch['c']}")
        if not (folder / "pid").exists():
            (folder / "pid.tmp").write_text(str(os.getpid()))
            os.replace(folder / "pid.tmp", folder / "pid")
            time.sleep(120)  # the test kills this process long before
        return score(arch)


class Curves:
    """Reports ``epochs`` epochs whose accuracy is the final score scaled up over the epochs."""

    name = "curves"

    def __init__(self, epochs: int = 9) -> None:
        self.epochs = epochs

    def __call__(self, arch: Mapping[str, Any], report: Any = None) -> dict[str, float]:
        final = score(arch)["accuracy"]
        for epoch in range(1, self.epochs + 1):
            if report is not None:
                report(epoch, {"accuracy": final * epoch / self.epochs})
        return {"accuracy": final}
