"""Invalid space files: one line naming the file, the field path and what is allowed."""
from __future__ import annotations

import pytest

from search_spaces import load_space
from search_spaces.errors import SpaceError

VALID = """
name: mine
resolution: 32
width: [1.0]
stem: {kernel: 3, stride: 1, channels: 16}
head: {channels: 64}
stages:
  - {block: mb, channels: 24, stride: 2, depth: [1, 2], kernel: [3, 5], expansion: [3, 6]}
"""


def load_text(tmp_path, text):
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    return load_space(str(path))


def test_valid_user_space_loads(tmp_path):
    space = load_text(tmp_path, VALID)
    assert space.name == "mine" and space.size == 2 * 4


@pytest.mark.parametrize(
    "old, new, expected",
    [
        ("kernel: [3, 5]", "kernel: [3, 4]",
         "mine.yaml: stages[0].kernel: 4 is not allowed (kernels must be positive odd integers)"),
        ("block: mb", "block: mbconvv",
         "mine.yaml: stages[0].block: unknown block type 'mbconvv'"),
        ("width: [1.0]", "width: [-0.5]", "mine.yaml: width: -0.5 is not allowed (must be a positive number)"),
        ("channels: 24, ", "", "mine.yaml: stages[0]: missing required field 'channels'"),
        ("depth: [1, 2]", "deph: [1, 2]", "mine.yaml: stages[0].deph: unknown key 'deph' (did you mean depth?)"),
        ("expansion: [3, 6]", "expansion: []", "mine.yaml: stages[0].expansion: empty choice list"),
        ("stride: 2", "stride: 3", "mine.yaml: stages[0].stride: 3 is not allowed; allowed: 1, 2"),
        ("name: mine", "nam: mine", "mine.yaml: nam: unknown key 'nam' (did you mean name?)"),
        ("head: {channels: 64}", "head: {kind: pooling}", "mine.yaml: head.kind: unknown head type 'pooling'"),
        ("resolution: 32", "resolution: [4]", "mine.yaml: resolution: 4 is not allowed (must be >= 8)"),
    ],
)
def test_invalid_spaces_give_one_line_errors(tmp_path, old, new, expected):
    assert old in VALID
    with pytest.raises(SpaceError) as err:
        load_text(tmp_path, VALID.replace(old, new, 1))
    message = str(err.value)
    assert message.startswith(expected), message
    assert "\n" not in message


def test_unknown_block_lists_the_allowed_types(tmp_path):
    refused = "did you mean mb.*allowed: mb, fmb, basic, bottleneck, convnext, skip, shuffle"
    with pytest.raises(SpaceError, match=refused):
        load_text(tmp_path, VALID.replace("block: mb", "block: mbb"))


def test_unreadable_yaml_names_the_line(tmp_path):
    with pytest.raises(SpaceError, match=r"mine.yaml: unreadable YAML at line \d+"):
        load_text(tmp_path, VALID + "  - {block: [unclosed\n")


def test_missing_file(tmp_path):
    with pytest.raises(SpaceError, match="does not exist"):
        load_space(str(tmp_path / "nope.yaml"))


def test_bad_op_fragment(tmp_path):
    text = VALID.replace(
        "block: mb, channels: 24, stride: 2, depth: [1, 2], kernel: [3, 5], expansion: [3, 6]",
        "channels: 24, stride: 2, ops: [skip, mb_k4_e3]",
    )
    with pytest.raises(SpaceError, match=r"stages\[0\].ops\[1\]: block 'mb': kernel must be"):
        load_text(tmp_path, text)
