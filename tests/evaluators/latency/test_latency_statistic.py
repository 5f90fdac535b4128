"""How a module's runs make one latency (``statistic``: the median or the faster half's mean) and
which workload evens out the machine's drift (``reference``): in the fingerprint and in every
command's defaults."""
from __future__ import annotations

import pytest

from evaluators.latency import LatencySettings, ProfileStore
from evaluators.latency.measure import Measurement, setting_defaults, summarise
from evaluators.latency.reference import SpeedReference
from nas.cli.scale import LATENCY_DEFAULTS as SCALE_LATENCY
from nas.profile import latency as nas_latency
from nas.run.settings import run_defaults
from search_spaces.errors import NasError


def test_lower_half_is_the_mean_of_the_faster_half_and_ignores_the_slow_tail():
    odd = summarise([4.0, 1.0, 100.0, 3.0, 2.0], "lower-half")
    assert odd.latency_ms == pytest.approx(2.0) and odd.median_ms == 3.0  # (1 + 2 + 3) / 3
    even = summarise([10.0, 1.0, 2.0, 3.0], "lower-half")
    assert even.latency_ms == pytest.approx(1.5)
    assert summarise([10.0, 1.0, 2.0, 3.0], "median").latency_ms == even.median_ms == 2.5
    assert summarise([7.0], "lower-half") == Measurement(7.0, 7.0, 7.0, 7.0, 1)
    refused = r"unknown statistic 'mean' \(did you mean median\?\); allowed: lower-half, median"
    with pytest.raises(NasError, match=refused):
        summarise([1.0], "mean")


def test_the_statistic_is_a_setting_recorded_in_the_fingerprint():
    median, lower = LatencySettings().fingerprint(), LatencySettings(statistic="lower-half").fingerprint()
    assert median.statistic == "median" and lower.slug != median.slug
    assert lower.differences(median) == ["statistic: lower-half != median"]
    assert "median of the runs" in median.describe()
    with pytest.raises(NasError, match="unknown statistic .p10.; allowed: lower-half, median"):
        LatencySettings(statistic="p10")


def test_every_command_starts_from_the_measurement_defaults():
    expected = setting_defaults()
    assert {k: nas_latency.LATENCY_DEFAULTS[k] for k in expected} == expected
    assert {k: SCALE_LATENCY[k] for k in expected} == expected
    # a run times every candidate, so fewer runs; everything else as a profile's
    assert {k: run_defaults()["latency"][k] for k in expected} == setting_defaults(repeats=10, rounds=10)


def test_a_new_profile_stores_the_latency_beside_the_median(tmp_path):
    store = ProfileStore(tmp_path / "p", LatencySettings().fingerprint())
    store.add_network("s", "fit", "arch", 10, Measurement(1.5, 2.0, 1.0, 3.0, 20))
    row = store.networks("s").iloc[0]
    assert (row["latency_ms"], row["median_ms"]) == (1.5, 2.0)


def test_the_reference_workload_is_a_setting_recorded_in_the_fingerprint():
    none, matmul = LatencySettings().fingerprint(), LatencySettings(reference="matmul").fingerprint()
    assert none.reference == "none" and none.slug != matmul.slug
    assert matmul.differences(none) == ["reference: matmul != none"]
    for workload in ("block", "matmul"):
        ref = SpeedReference(workload=workload)
        assert ref.time_once() > 0 and ref.nominal > 0
    with pytest.raises(NasError, match="unknown reference .conv.; allowed: block, matmul, none"):
        LatencySettings(reference="conv")
