"""Shared fixtures: where the reference data outside the project lives."""
from __future__ import annotations

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
