"""The nas command line: spaces, show, sample, and one-line errors with exit code 2."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from nas.cli.commands import main
from search_spaces import zoo
from tests.paths import ROOT


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("command", ["", "run", "retrain", "supernet", "scale", "latency", "show"])
def test_help_loads_no_torch(command):
    # help is read before anything runs: it must come back without the seconds torch takes to import
    code = ("import sys; from nas.cli.commands import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code, *command.split(), "--help"], cwd=ROOT, check=True,
                   capture_output=True)


def test_spaces_lists_every_space_with_its_size(capsys):
    code, out, _ = run(capsys, "spaces")
    assert code == 0
    assert "nasbench_macro" in out and "6,561" in out and "mbconv" in out


def test_show_json_has_the_documented_fields(capsys):
    code, out, _ = run(capsys, "show", "efficientnet_b0", "--space", "mbconv", "--json")
    info = json.loads(out)
    assert code == 0
    assert info["arch"] == str(zoo.reference("efficientnet_b0"))
    assert (info["space"], info["resolution"], info["params"], info["macs"]) == (
        "mbconv", 224, 5288548, 385814752,
    )


def test_show_accepts_strings_and_files(capsys, tmp_path):
    text = str(zoo.reference("resnet18"))
    assert json.loads(run(capsys, "show", text, "--json")[1])["params"] == 11689512
    path = tmp_path / "arch.yaml"
    path.write_text(zoo.reference("resnet18").to_yaml())
    assert json.loads(run(capsys, "show", str(path), "--json")[1])["arch"] == text
    path.write_text(f"arch: '{text}'\n")
    assert json.loads(run(capsys, "show", str(path), "--json")[1])["arch"] == text


def test_sample_is_seeded(capsys):
    first = run(capsys, "sample", "space=nasbench_macro", "n=3", "seed=5")[1]
    assert first == run(capsys, "sample", "space=nasbench_macro", "n=3", "seed=5")[1]
    assert len(first.splitlines()) == 3 and first.startswith("nasbench_macro@32")


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["show", "efficientnet_b9"], "did you mean efficientnet_b7"),
        (["show", "resnet50", "--space", "mbconv"], "activation relu not in [silu]"),
        (["show", "x@32_relu:stem_k3_s1_c8:mbb_k3_c8:head_c8"], "unknown block type 'mbb'"),
        (["sample", "spce=mbconv"], "unknown key 'spce' (did you mean space?)"),
        (["sample", "space=mbconf"], "unknown space 'mbconf' (did you mean mbconv?)"),
        (["sample", "n=0"], "n: must be >= 1"),
        (["sample", "n=abc"], "n: expected int"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, fragment):
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert fragment in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_unknown_command_is_one_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "invalid choice: 'frobnicate'" in err
    assert err.count("\n") == 1
