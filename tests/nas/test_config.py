"""Strict key=value overrides."""
from __future__ import annotations

import pytest

from nas.config import parse_overrides
from search_spaces.errors import ConfigError

DEFAULTS = {"space": "mbconv", "n": 5, "lr": 0.1, "flag": False, "data": {"name": "digits", "root": None}}


def test_overrides_merge_with_types():
    cfg = parse_overrides(["n=7", "lr=1", "data.root=/tmp/x", "flag=true"], DEFAULTS)
    assert cfg.n == 7 and cfg.lr == 1 and cfg.data.root == "/tmp/x" and cfg.flag is True
    assert cfg.space == "mbconv"


@pytest.mark.parametrize(
    "item, fragment",
    [
        ("spce=mbconv", "unknown key 'spce' (did you mean space?)"),
        ("n=abc", "n: expected int"),
        ("flag=3", "flag: expected bool"),
        ("novalue", "expected key=value"),
        ("data.rot=x", "did you mean data.root"),
    ],
)
def test_bad_overrides_are_one_line_errors(item, fragment):
    with pytest.raises(ConfigError) as err:
        parse_overrides([item], DEFAULTS)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_open_keys_accept_free_options():
    cfg = parse_overrides(["opts.population=50"], {**DEFAULTS, "opts": {}}, open_keys=["opts"])
    assert cfg.opts.population == 50
