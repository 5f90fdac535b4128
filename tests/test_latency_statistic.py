"""How a module's runs make one latency (``statistic``: the faster half's mean or the median) and
which workload cancels the machine's drift (``reference``): in the fingerprint, in every command's
defaults, and in profiles written before the settings."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from evaluators.latency import LatencySettings, ProfileStore
from evaluators.latency.measure import Measurement, setting_defaults, summarise
from nas.cli.scale import LATENCY_DEFAULTS as SCALE_LATENCY
from nas.profile import latency as nas_latency
from nas.run.defaults import RUN_DEFAULTS
from search_spaces.errors import ConfigError, NasError


def test_lower_half_is_the_mean_of_the_faster_half_and_ignores_the_slow_tail():
    odd = summarise([4.0, 1.0, 100.0, 3.0, 2.0], "lower-half")
    assert odd.latency_ms == pytest.approx(2.0) and odd.median_ms == 3.0  # (1 + 2 + 3) / 3
    even = summarise([10.0, 1.0, 2.0, 3.0], "lower-half")
    assert even.latency_ms == pytest.approx(1.5)
    assert summarise([10.0, 1.0, 2.0, 3.0], "median").latency_ms == even.median_ms == 2.5
    assert summarise([7.0], "lower-half") == Measurement(7.0, 7.0, 7.0, 7.0, 1)
    with pytest.raises(NasError, match=r"unknown statistic 'mean' \(did you mean median\?\); allowed: lower-half, median"):
        summarise([1.0], "mean")


def test_the_statistic_is_a_setting_recorded_in_the_fingerprint():
    lower, median = LatencySettings().fingerprint(), LatencySettings(statistic="median").fingerprint()
    assert lower.statistic == "lower-half" and lower.slug != median.slug
    assert median.differences(lower) == ["statistic: median != lower-half"]
    assert "lower-half of the runs" in lower.describe()
    with pytest.raises(NasError, match="unknown statistic .p10.; allowed: lower-half, median"):
        LatencySettings(statistic="p10")


def test_every_command_starts_from_the_measurement_defaults():
    expected = setting_defaults()
    assert {k: nas_latency.LATENCY_DEFAULTS[k] for k in expected} == expected
    assert {k: SCALE_LATENCY[k] for k in expected} == expected
    # a run times every candidate, so fewer runs; everything else as a profile's
    assert {k: RUN_DEFAULTS["latency"][k] for k in expected} == setting_defaults(repeats=10, rounds=10)


def test_a_profile_from_before_the_statistic_reads_as_median_and_keeps_its_rows(tmp_path):
    fingerprint = LatencySettings(statistic="median").fingerprint().to_dict()
    del fingerprint["statistic"]
    old = tmp_path / "old"
    old.mkdir()
    (old / "fingerprint.json").write_text(json.dumps(fingerprint))
    pd.DataFrame([{"key": "stem:a", "median_ms": 2.0, "p25_ms": 1.5, "p75_ms": 2.5, "repeats": 10}]).to_csv(
        old / "parts.csv", index=False)
    store = ProfileStore(old)
    assert store.fingerprint.statistic == "median"
    with pytest.raises(ConfigError, match="statistic: median != lower-half"):
        ProfileStore(old, LatencySettings().fingerprint())
    assert store.parts() == {"stem:a": 2.0}  # the median, which is what it measured as latency
    store.add_parts({"stem:b": Measurement(3.0, 3.0, 2.0, 4.0, 10)})  # the old file gains the column
    frame = pd.read_csv(old / "parts.csv")
    assert frame.columns.tolist() == ["key", "latency_ms", "median_ms", "p25_ms", "p75_ms", "repeats"]
    assert store.parts() == {"stem:a": 2.0, "stem:b": 3.0}


def test_a_new_profile_stores_the_latency_beside_the_median(tmp_path):
    store = ProfileStore(tmp_path / "p", LatencySettings().fingerprint())
    store.add_network("s", "fit", "arch", 10, Measurement(1.5, 2.0, 1.0, 3.0, 20))
    row = store.networks("s").iloc[0]
    assert (row["latency_ms"], row["median_ms"]) == (1.5, 2.0)


def test_the_reference_workload_is_a_setting_recorded_in_the_fingerprint():
    from evaluators.latency.reference import SpeedReference

    block, matmul = LatencySettings().fingerprint(), LatencySettings(reference="matmul").fingerprint()
    assert block.reference == "block" and block.slug != matmul.slug
    assert matmul.differences(block) == ["reference: matmul != block"]
    for workload in ("block", "matmul"):
        ref = SpeedReference(workload=workload)
        assert ref.time_once() > 0 and ref.nominal > 0
    with pytest.raises(NasError, match="unknown reference .conv.; allowed: block, matmul, none"):
        LatencySettings(reference="conv")
