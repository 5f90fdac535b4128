"""What the README shows works as written: here, the Ray cluster-launcher YAML."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

README = Path(__file__).resolve().parents[1] / "README.md"


def _yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.DOTALL)


def test_the_readmes_cluster_yaml_passes_rays_cluster_schema():
    pytest.importorskip("ray")
    from ray.autoscaler._private.util import prepare_config, validate_config

    clusters = [yaml.safe_load(b) for b in _yaml_blocks() if "available_node_types" in b]
    assert len(clusters) == 1
    config = clusters[0]
    validate_config(prepare_config(config))  # raises on any key Ray's launcher would refuse
    workers = config["available_node_types"]["gpu_worker"]
    assert workers["max_workers"] >= 2 and config["head_node_type"] == "head"
    head_start = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head_start  # the dashboard is not exposed
