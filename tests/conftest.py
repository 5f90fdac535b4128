"""Shared fixtures: where the reference data outside the project lives."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ``shared/`` folder beside the repository (or ``$NAS_SHARED``); skip when absent."""
    path = Path(os.environ.get("NAS_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")
    if not path.is_dir():
        pytest.skip(f"reference data folder {path} not found (set NAS_SHARED to its location)")
    return path


@pytest.fixture(scope="session")
def table_path(shared_dir) -> Path:
    """The NAS-Bench-Macro CIFAR-10 table; skip when absent."""
    path = shared_dir / "benchmarks" / "nas-bench-macro_cifar10.json"
    if not path.is_file():
        pytest.skip(f"NAS-Bench-Macro table {path} not found")
    return path


@pytest.fixture(scope="session")
def table(table_path) -> dict:
    """The NAS-Bench-Macro table, parsed."""
    return json.loads(table_path.read_text())
