"""Security: safe YAML only, weights_only checkpoints, no pickles of user files, no open dashboard."""
from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest
import torch
from ray._private.worker import global_worker

from nas.backends.ray_cluster import connect
from nas.deploy.retrain import load_model
from tests.paths import ROOT

SOURCES = [p for package in ("nas", "evaluators", "search_spaces") for p in (ROOT / package).rglob("*.py")]


def _calls(pattern: str) -> list[str]:
    found = []
    for path in SOURCES:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(pattern, line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    return found


def test_yaml_is_only_loaded_safely():
    assert _calls(r"yaml\.(load|unsafe_load|full_load|load_all)\(|Loader=yaml\.(Unsafe|Full)?Loader") == []
    assert _calls(r"yaml\.safe_load\(")  # and safe loading is what is used


def test_every_torch_load_is_weights_only():
    loads = _calls(r"torch\.load\(")
    assert loads and all("weights_only=True" in line for line in loads), loads


def test_no_pickle_of_files_anywhere():
    assert _calls(r"^\s*(import pickle|from pickle import)|pickle\.loads?\(") == []


class _Boom:
    def __reduce__(self):
        return (Path.touch, (Path("/tmp/nas-security-pwned"),))


def test_a_model_file_carrying_code_is_refused(tmp_path):
    marker = Path("/tmp/nas-security-pwned")
    marker.unlink(missing_ok=True)
    path = tmp_path / "model.pt"
    torch.save({"state_dict": {}, "arch": "x", "payload": _Boom()}, path)
    with pytest.raises(pickle.UnpicklingError):
        load_model(path)
    assert not marker.exists()


@pytest.mark.integration
def test_a_private_ray_cluster_has_no_dashboard():
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("Ray is already running in this process")

    assert connect(None, num_cpus=1) is True
    try:
        assert not global_worker.node.address_info.get("webui_url")  # nothing serves HTTP
    finally:
        ray.shutdown()
