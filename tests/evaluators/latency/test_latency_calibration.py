"""Latency calibration forms (linear, power, per part kind) chosen by leave-one-out error, and the
measurement's weight placement (recorded in the fingerprint)."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from evaluators.latency import LatencySettings, Measurer, ProfileStore, reference
from evaluators.latency.measure import Measurement
from evaluators.latency.profile import calibrate
from evaluators.latency.runtimes import eager
from evaluators.latency.runtimes.eager import replace_weights
from evaluators.latency.table import Calibration, LatencyTable, fit_table_calibration
from nas.cli.commands import main
from nas.profile import latency as nas_latency
from search_spaces.errors import ConfigError, NasError
from tests.spaces import TINY

FAST = {"warmup": 0, "repeats": 2, "rounds": 2}


def test_a_power_law_is_fitted_as_one_and_a_line_as_a_line():
    sums = np.geomspace(5, 120, 30)
    power = fit_table_calibration(sums, 0.8 * sums ** 1.15)
    assert power.form in ("power", "kinds") and power.exponent == pytest.approx(1.15, abs=1e-6)
    assert power(200.0) == pytest.approx(0.8 * 200 ** 1.15, rel=1e-6) and power.cv_mape < 1e-6
    line = fit_table_calibration(sums, 1.2 * sums + 3.0)
    assert line.form == "linear" and line.scale == pytest.approx(1.2) and line.offset_ms == pytest.approx(3.0)


def test_per_kind_shares_are_corrected_when_one_kind_joins_a_network_at_another_cost():
    rng = np.random.default_rng(0)
    rows = [{"stem": rng.uniform(0.5, 3), "mb": rng.uniform(5, 60), "head": rng.uniform(0.5, 8)} for _ in range(40)]
    sums = np.array([sum(r.values()) for r in rows])
    shares = np.array([r["head"] / s for r, s in zip(rows, sums)])
    measured = 1.1 * sums ** 1.05 * np.exp(0.9 * shares)  # heads cost more inside a network than alone
    c = fit_table_calibration(sums, measured, rows)
    assert c.form == "kinds" and dict(c.kind_weights)["head"] == pytest.approx(0.9, abs=0.02)
    predicted = np.array([c(s, {k: v / s for k, v in r.items()}) for r, s in zip(rows, sums)])
    assert np.max(np.abs(predicted - measured) / measured) < 0.01
    linear = fit_table_calibration(sums, measured, rows, forms=("linear",))
    assert c.cv_mape < linear.cv_mape


def test_too_few_networks_is_a_one_line_error():
    with pytest.raises(ConfigError, match="needs at least 2 measured networks, got 1"):
        fit_table_calibration([3.0], [4.0])
    with pytest.raises(ConfigError, match="unknown form 'cubic'"):
        fit_table_calibration([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], forms=("cubic",))
    few = fit_table_calibration([1.0, 2.0, 4.0], [2.0, 3.0, 5.0])  # too few to compare forms: a line
    assert few.form == "linear" and few.cv_mape is None


def test_a_profile_calibrates_a_known_non_linear_table(tmp_path):
    """A synthetic table (made-up part latencies) whose networks cost a power of their parts' sum
    times a correction for the head's share: the calibration recovers it on held-out networks."""
    space_file = tmp_path / "tiny.yaml"
    space_file.write_text(TINY)
    session = nas_latency.open_session({**nas_latency.LATENCY_DEFAULTS, **FAST, "space": str(space_file),
                                        "out": str(tmp_path / "out"), "num_classes": 10})
    keys = sorted(nas_latency.space_parts(session.space, 10))
    rng = random.Random(0)
    store = session.store

    store.add_parts({k: Measurement(*[rng.uniform(0.05, 2.0)] * 2, 0, 0, 1) for k in keys})
    table = store.table()

    def truth(arch):
        sums = table.kind_sums(arch, 10)
        total = sum(sums.values())
        return 0.7 * total ** 1.3 * np.exp(1.5 * sums["head"] / total)

    archs = nas_latency.sample_distinct(session.space, 60, seed=1)
    for arch in archs[:40]:
        ms = truth(arch)
        store.add_network(session.space.name, "calibration", str(arch), 10, Measurement(ms, ms, ms, ms, 1))
    c = calibrate(session.space, store, 10)
    assert c.form == "kinds" and c.networks == 40
    fitted = store.table()  # as a later process reads it
    assert fitted.calibration == c
    errors = [abs(fitted.predict(a, 10) - truth(a)) / truth(a) for a in archs[40:]]
    assert max(errors) < 0.02
    # the vectorised path (searches predict many at once) gives the same numbers
    assert fitted.predict_many(archs[40:], 10) == pytest.approx([fitted.predict(a, 10) for a in archs[40:]])


def test_the_first_calibration_format_still_loads_as_linear(tmp_path):
    store = ProfileStore(tmp_path / "p", LatencySettings().fingerprint())
    store._ensure()
    (store.path / "calibration.json").write_text(json.dumps({"scale": 1.5, "offset_ms": 2.0, "networks": 9}))
    c = store.calibration()
    assert c == Calibration(1.5, 2.0, 9) and c.form == "linear" and c(10.0) == pytest.approx(17.0)
    assert "1.500 x sum +2.000 ms" in c.describe()


def test_calibrate_below_two_is_refused_on_the_command_line(tmp_path, capsys):
    space_file = tmp_path / "tiny.yaml"
    space_file.write_text(TINY)
    code = main(["latency", "profile", f"space={space_file}", f"out={tmp_path}", "calibrate=1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "calibrate" in err[0] and "0" in err[0] and "2" in err[0]
    assert not (tmp_path / "latency").exists()


def test_weights_move_to_new_memory_with_the_same_values():
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8))
    module = module.to(memory_format=torch.channels_last)
    before = {n: (t.data_ptr(), t.detach().clone()) for n, t in module.state_dict().items() if t.numel() > 1}
    replace_weights(module)
    after = {n: t for n, t in module.state_dict().items() if t.numel() > 1}
    for name, (pointer, value) in before.items():
        assert after[name].data_ptr() != pointer and torch.equal(after[name], value)
    assert module[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert module[0].weight.requires_grad  # still a trainable parameter, not an inference tensor


def test_per_round_placement_moves_the_weights_between_rounds_and_is_in_the_fingerprint(monkeypatch):
    moved = []
    real = eager.replace_weights
    monkeypatch.setattr(eager, "replace_weights", lambda m: moved.append(m) or real(m))
    conv = torch.nn.Conv2d(4, 4, 3, padding=1)
    Measurer(LatencySettings(warmup=0, repeats=6, rounds=3)).measure(conv, (4, 8, 8))
    assert len(moved) == 2  # before rounds 2 and 3
    moved.clear()
    Measurer(LatencySettings(warmup=0, repeats=6, rounds=3, placement="fixed")).measure(conv, (4, 8, 8))
    assert moved == []
    fixed, per_round = LatencySettings(placement="fixed").fingerprint(), LatencySettings().fingerprint()
    assert per_round.placement == "per-round" and fixed.slug != per_round.slug
    assert fixed.differences(per_round) == ["placement: fixed != per-round"]
    with pytest.raises(NasError, match="unknown placement .random.; allowed: per-round, fixed"):
        LatencySettings(placement="random")


def test_a_profile_from_before_placement_was_recorded_reads_as_fixed(tmp_path):
    fingerprint = LatencySettings().fingerprint().to_dict()
    del fingerprint["placement"]
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "fingerprint.json").write_text(json.dumps(fingerprint))
    assert ProfileStore(tmp_path / "old").fingerprint.placement == "fixed"
    with pytest.raises(ConfigError, match="placement: fixed != per-round"):
        ProfileStore(tmp_path / "old", LatencySettings().fingerprint())


def test_a_per_kind_calibration_multiplies_by_the_shares():
    table = LatencyTable(LatencySettings().fingerprint(), {}, Calibration(1.0, 0.0, 40, "kinds", 1.1, (("head", 0.5),)))
    assert table.calibration(10.0, {"head": 0.2}) == pytest.approx(10 ** 1.1 * np.exp(0.1))


def test_the_reference_is_timed_again_only_after_its_refresh_interval(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(reference.time, "perf_counter", lambda: clock[0])
    ref = reference.SpeedReference()
    ref.recent.extend([1.0])
    ref.timings.extend([1.0])
    ref._timed_at = clock[0]
    assert ref.sample() == pytest.approx(1.0) and len(ref.timings) == 1  # within the interval: no timing
    clock[0] += 2 * reference.REFRESH_S
    ref.sample()
    assert len(ref.timings) == 2  # timed again (on the frozen clock this run takes 0 ms)
