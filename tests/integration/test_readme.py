"""What the README and docs/ show works as written: every `nas` command of their bash blocks, and
the Ray cluster-launcher YAML.

Quick commands run for real (in a scratch folder holding one small run); long ones (a search,
a retrain, a profile, an alpha/beta/gamma grid search) have their settings checked by the same
parsers the commands use, so a renamed key or command fails here. `./nasw` is what CI itself runs,
and `ray job submit` is `tests/integration/test_ray_jobs.py`.
"""
from __future__ import annotations

import random
import re
import shlex
from pathlib import Path

import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from nas.cli.commands import main
from nas.cli.retrain import parse as parse_retrain
from nas.cli.scale import parse_config
from nas.cli.supernet import extract_defaults, train_defaults
from nas.cli.supernet import parse as parse_supernet
from nas.config import parse_overrides
from nas.profile import latency
from nas.run.runconfig import config_from_overrides
from search_spaces.registry import load_space
from tests.paths import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _blocks(language: str) -> list[str]:
    return [block for page in PAGES
            for block in re.findall(rf"```{language}\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.DOTALL)]


def _yaml_blocks() -> list[str]:
    return _blocks("yaml")


def test_every_link_between_the_pages_finds_its_page_and_heading():
    def anchors(page: Path) -> set[str]:
        text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)
        return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
                for h in re.findall(r"^#+ (.*)$", text, flags=re.MULTILINE)}

    broken = []
    for page in PAGES:
        for target, anchor in re.findall(r"\]\(([^)#\s]*\.md|)(?:#([\w\-]+))?\)", page.read_text(encoding="utf-8")):
            linked = (page.parent / target).resolve() if target else page
            if not linked.exists() or (anchor and anchor not in anchors(linked)):
                broken.append(f"{page.name}: {target}#{anchor}")
    assert not broken, broken


def test_the_readme_is_a_front_page():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    first = re.search(r"```bash\n(.*?)```", text, flags=re.DOTALL).group(1)
    assert [line.split("#")[0].split() for line in first.strip().splitlines()] == [
        ["./nasw", "run", "space=mbconv", "strategy=evolution"], ["./nasw", "test"]]


def test_the_readmes_cluster_yaml_passes_rays_cluster_schema():
    clusters = [yaml.safe_load(b) for b in _yaml_blocks() if "available_node_types" in b]
    assert len(clusters) == 1
    config = clusters[0]
    validate_config(prepare_config(config))  # raises on any key Ray's launcher would refuse
    workers = config["available_node_types"]["gpu_worker"]
    assert workers["max_workers"] >= 2 and config["head_node_type"] == "head"
    head_start = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head_start  # the dashboard is not exposed
    starts = [c for c in config["head_start_ray_commands"] + config["worker_start_ray_commands"]
              if "ray start" in c]
    assert all(c.startswith("RAY_AUTH_MODE=token ray start") for c in starts)  # token auth on every node
    assert "~/.ray/auth_token" in config["file_mounts"].values()  # with the same token


def readme_commands() -> list[str]:
    """Every `nas ...` line of the pages' bash blocks (comments and continuations resolved)."""
    commands = []
    for block in _blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line.startswith("nas "):
                commands.append(line)
    return commands


PLACEHOLDERS = {"<run_id>": "readme", "<id>": "readme", "[RUN_ID]": "readme", "ARCH": "efficientnet_b0",
                '"$(nas show efficientnet_b0 --json | jq -r .arch)"': "efficientnet_b0",
                "nas-bench-macro_cifar10.json": "TABLE", "'nasbench_macro@32_relu:...'": "NB_ARCH"}
LONG = ("run", "retrain", "latency", "supernet")  # checked, not run


def _argv(command: str, out: Path) -> list[str]:
    for key, value in PLACEHOLDERS.items():
        command = command.replace(key, value)
    command = re.sub(r"\[(--[^\]]+)\]", r"\1", command)  # optional flags: shown as [--sort X]
    argv = shlex.split(command)[1:]
    return [a.replace("results/", f"{out}/") for a in argv]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    out = tmp_path_factory.mktemp("readme")
    assert main(["run", "evaluator=cost", "budget=2", f"out={out}", "run_id=readme", "progress=false"]) == 0
    assert main(["scale", "efficientnet_b0", "phi=2", f"out={out}", "progress=false"]) == 0
    return out


def _check_settings(argv: list[str], out: Path) -> None:
    """The settings of a long command, through its own parser (raises on a bad key or value)."""
    settings = [a for a in argv[1:] if "=" in a]
    if argv[0] == "run":
        config_from_overrides([s for s in settings if not s.startswith("resume=")])
    elif argv[0] == "retrain":
        parse_retrain(argv[1:])
    elif argv[0] == "supernet":
        parse_supernet(argv[2:], train_defaults() if argv[1] == "train" else extract_defaults())
    elif argv[0] == "latency":
        parse_overrides(settings, latency.LATENCY_DEFAULTS)


@pytest.mark.parametrize("command", readme_commands())
def test_readme_command(command, scratch, request, capsys, monkeypatch):
    argv = _argv(command, scratch)
    if any("TABLE" in a for a in argv):  # only this command needs the benchmark table
        table_path = request.getfixturevalue("table_path")
        argv = [a.replace("TABLE", str(table_path)) for a in argv]
    if "NB_ARCH" in argv:
        space = load_space("nasbench_macro")
        argv[argv.index("NB_ARCH")] = space.to_string(space.sample(random.Random(0)))
    monkeypatch.chdir(scratch)
    if "--help" in argv:
        with pytest.raises(SystemExit) as done:
            main(argv)
        assert done.value.code == 0
        return
    if argv[0] in LONG:
        _check_settings(argv, scratch)
        return
    if "search=true" in argv:  # a grid search trains dozens of networks: its settings only

        parse_config(argv[2:])
        return
    if argv[0] in ("leaderboard", "report"):
        argv += ["--out", str(scratch)]
    elif argv[0] == "scale":
        argv.append(f"out={scratch}")
    assert main(argv) == 0, capsys.readouterr().err


@pytest.mark.parametrize("argv, shown", [
    ([], ["run", "scale", "retrain", "supernet", "latency", "report", "leaderboard", "show", "sample", "spaces",
          "strategies"]),
    (["run"], ["budget=20", "seed=0", "backend=local", "ray.workers=null", "latency=auto", "pruner=none"]),
    (["scale"], ["phi=3", "alpha=1.2", "beta=1.1", "gamma=1.15", "search=false", "out=results"]),
    (["retrain"], ["epochs=30", "batch=128", "augment=none", "workers=1", "ray.address=null"]),
    (["latency"], ["threads=1", "batch=1", "repeats=20", "rounds=20"]),
    (["supernet"], ["epochs=11", "sampling=sandwich", "random_subnets=2", "distill=true", "resolution=32",
                    "calib_batches=4", "out=results"]),
    (["report"], ["--out", "default: results", "--top"]),
    (["leaderboard"], ["--top", "--sort", "default: results"]),
])
def test_help_lists_the_keys_with_their_defaults(argv, shown, capsys):
    with pytest.raises(SystemExit) as done:
        main([*argv, "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    missing = [s for s in shown if s not in text]
    assert not missing, missing
