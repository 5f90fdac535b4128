"""Bad input, CLI and Python API: one line naming the field and what is allowed, exit code 2 (or a
NasError subclass), no traceback, nothing written and nothing already written lost.

`tests/nas/run/test_cli_run.py` holds the `nas run` key/value cases; here are spaces, architectures, the
other commands and the Python API, each against an out folder that already holds a run.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import nas
from nas.cli.commands import main
from nas.deploy.retrain import retrain
from search_spaces.errors import NasError

GOOD_STAGE = "{block: mb, channels: 16, stride: 1, depth: [1, 2], kernel: [3, 5], expansion: [1, 6], se: [0]}"
SPACE_YAML = """name: custom
resolution: {base: 32, multipliers: MULT}
width: [1.0]
act: relu
stem: {kernel: 3, stride: 2, channels: 16}
head: {channels: 64, dropout: 0.0}
stages:
  - STAGE
"""


def space_file(tmp_path: Path, stage: str = GOOD_STAGE, mult: str = "[1.0]", text: str | None = None) -> str:
    path = tmp_path / "space.yaml"
    path.write_text(text if text is not None else SPACE_YAML.replace("STAGE", stage).replace("MULT", mult))
    return str(path)


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """An out folder holding one finished run, whose files must survive every bad command."""
    out = tmp_path_factory.mktemp("results")
    assert main(["run", "evaluator=cost", "budget=3", f"out={out}", "run_id=kept", "progress=false"]) == 0
    return out


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def check_one_line(capsys, code: int, fragments: tuple[str, ...]) -> None:
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err


SPACE_CASES = [
    ("even kernel", {"stage": GOOD_STAGE.replace("[3, 5]", "[3, 4]")}, ("kernel", "odd")),
    ("empty choice list", {"stage": GOOD_STAGE.replace("expansion: [1, 6]", "expansion: []")}, ("expansion",)),
    ("multiplier out of range", {"mult": "[0.0, 1.0]"}, ("multipliers",)),
    ("unknown block", {"stage": GOOD_STAGE.replace("block: mb", "block: mbx")}, ("block", "mb")),
    ("unreadable YAML", {"text": "name: [unclosed\n  stages: {"}, ("space.yaml",)),
    ("not a mapping", {"text": "- 1\n- 2\n"}, ("space.yaml",)),
    # safe loading: a Python tag is an error, never a call
    ("python tag", {"text": "name: !!python/object/apply:os.system ['touch /tmp/nas-yaml-pwned']\n"},
     ("space.yaml",)),
]


@pytest.mark.parametrize("case, change, fragments", SPACE_CASES, ids=[c[0] for c in SPACE_CASES])
def test_bad_space_files(capsys, tmp_path, results, case, change, fragments):
    before = snapshot(results)
    code = main(["run", f"space={space_file(tmp_path, **change)}", "evaluator=cost", f"out={results}",
                 "progress=false"])
    check_one_line(capsys, code, fragments)
    assert snapshot(results) == before
    assert not Path("/tmp/nas-yaml-pwned").exists()


def test_a_space_whose_members_cannot_be_built_is_refused(capsys, tmp_path, results):
    before = snapshot(results)
    stage = GOOD_STAGE.replace("channels: 16", "channels: 99999999")
    code = main(["run", f"space={space_file(tmp_path, stage)}", "evaluator=cost", f"out={results}", "progress=false"])
    check_one_line(capsys, code, ("space custom: its largest member is too large", "max_params"))
    assert snapshot(results) == before


def test_the_python_retrain_refuses_an_absurd_architecture(results):
    with pytest.raises(NasError, match="kernel 99999"):
        retrain(HUGE_KERNEL, out=results)


HUGE_KERNEL = "mbconv@224_silu:stem_k3_s2_c32:mb_k99999_c16:head_c1280"
HUGE_CHANNELS = "mbconv@224_silu:stem_k3_s2_c32:mb_k3_c99999999:head_c1280"
HUGE_RESOLUTION = "mbconv@99999999_silu:stem_k3_s2_c32:mb_k3_c16:head_c1280"

COMMAND_CASES = [
    ("malformed arch string", ["show", "mbconv@224:stem_k3_c32:mb_kX:head_c1280"], ("mb_kX",)),
    ("arch not in the space", ["show", "resnet18", "--space", "mbconv"], ("mbconv",)),
    ("unknown reference model", ["show", "efficientnet_b9"], ("efficientnet_b9", "efficientnet_b7")),
    ("scale: unknown arch", ["scale", "efficientnet_b9"], ("efficientnet_b9",)),
    ("scale: negative phi", ["scale", "efficientnet_b0", "phi=-1"], ("phi",)),
    ("scale: unknown key", ["scale", "efficientnet_b0", "alhpa=1.2"], ("alhpa",)),
    ("retrain: zero epochs", ["retrain", "efficientnet_b0", "epochs=0"], ("epochs",)),
    ("retrain: unknown augment", ["retrain", "efficientnet_b0", "augment=mixup"], ("augment", "randaugment")),
    ("latency: unknown device", ["latency", "profile", "device=tpu"], ("device",)),
    ("latency: unknown space", ["latency", "profile", "space=nope"], ("nope",)),
    ("leaderboard: unknown column", ["leaderboard", "--sort", "speed"], ("speed", "accuracy")),
    ("report: unknown run", ["report", "ghost"], ("ghost",)),
    ("sample: n=0", ["sample", "n=0"], ("n: must be >= 1",)),
    ("run: unknown ray setting", ["run", "backend=ray", "ray.wrkers=2"], ("ray.wrkers", "ray.workers")),
    ("run: config file missing", ["run", "config=missing.yaml"], ("config", "missing.yaml")),
    ("run: data val_fraction", ["run", "data.val_fraction=1.5"], ("val_fraction",)),
    ("run: missing data path", ["run", "data=imagefolder", "data.root=/nonexistent/photos"],
     ("data.root", "/nonexistent/photos")),
    # architectures no machine can build: refused before anything is allocated
    ("show: kernel larger than its map", ["show", HUGE_KERNEL], ("kernel 99999", "112x112")),
    ("show: absurd channels", ["show", HUGE_CHANNELS], ("parameters exceed max_params",)),
    ("show: absurd resolution", ["show", HUGE_RESOLUTION], ("activations per image exceed",)),
    ("show: a lower limit", ["show", "efficientnet_b0", "--max-params", "1e6"], ("max_params=1e+06",)),
    ("retrain: absurd channels", ["retrain", HUGE_CHANNELS], ("parameters exceed max_params",)),
    ("retrain: a lower limit", ["retrain", "efficientnet_b0", "limits.max_params=1e6"], ("max_params=1e+06",)),
    ("run: absurd baseline", ["run", "evaluator=cost", f"baselines=[{HUGE_RESOLUTION}]"], ("activations",)),
    ("run: space beyond the limit", ["run", "evaluator=cost", "limits.max_params=1e5"],
     ("space mbconv: its largest member", "max_params=1e+05")),
    ("run: unknown limit", ["run", "limits.max_parms=1e5"], ("limits.max_parms", "max_params")),
]


@pytest.mark.parametrize("case, argv, fragments", COMMAND_CASES, ids=[c[0] for c in COMMAND_CASES])
def test_bad_command_inputs(capsys, results, monkeypatch, case, argv, fragments):
    monkeypatch.chdir(results)  # relative paths (results/, missing.yaml) resolve in the kept folder
    before = snapshot(results)
    out = ["--out", str(results)] if argv[0] in ("leaderboard", "report") else []
    if argv[0] in ("run", "scale", "retrain", "latency"):
        out = [f"out={results}"]
    code = main([*argv, *out])
    check_one_line(capsys, code, fragments)
    assert snapshot(results) == before


API_CASES = [
    ("unknown space", {"space": "mbconf"}, ("space", "mbconv")),
    ("unknown strategy", {"strategy": "evolutoin"}, ("strategy", "evolution")),
    ("unknown evaluator", {"evaluator": "nasbench"}, ("evaluator", "nasbench_macro")),
    ("budget 0", {"budget": 0}, ("budget",)),
    ("negative budget", {"budget": -2}, ("budget",)),
    ("wrong type budget", {"budget": "ten"}, ("budget",)),
    ("unknown strategy option", {"populaton": 5}, ("populaton", "population")),
    ("bad objective", {"objectives": "accuracy:best"}, ("max or min",)),
    ("unknown latency option", {"latency": {"treads": 1}}, ("treads", "threads")),
    ("bad ray setting", {"backend": "ray", "ray": {"workers": 0}}, ("ray.workers",)),
    ("unknown backend", {"backend": "moon"}, ("backend", "local")),
    ("resume a ghost", {"resume": True, "run_id": "ghost"}, ("ghost",)),
    ("space beyond the limit", {"limits": {"max_activation_mb": 1.0}}, ("max_activation_mb=1",)),
    ("unknown limit", {"limits": {"max_parms": 1}}, ("max_parms", "max_params")),
    ("absurd baseline", {"baselines": [HUGE_KERNEL]}, ("kernel 99999",)),
]


@pytest.mark.parametrize("case, kwargs, fragments", API_CASES, ids=[c[0] for c in API_CASES])
def test_bad_api_inputs_raise_one_line_nas_errors(results, case, kwargs, fragments):
    before = snapshot(results)
    kwargs = {"evaluator": "cost", **kwargs}
    with pytest.raises(NasError) as info:
        nas.search(out=results, **kwargs)
    message = str(info.value)
    assert "\n" not in message and all(f in message for f in fragments), message
    assert snapshot(results) == before
