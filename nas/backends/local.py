"""The sequential backend: evaluate in this process, one architecture at a time."""
from __future__ import annotations

from typing import Any

from evaluators.base import Reporter


class LocalBackend:
    """Calls the evaluator directly; a resumed run is exactly an uninterrupted one with it."""

    name = "local"
    workers = 1

    def evaluate(self, evaluator: Any, arch: Any, report: Reporter | None = None) -> Any:
        return evaluator(arch, report)
