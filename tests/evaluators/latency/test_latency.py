"""Latency: reachable parts, measurement, device profiles (reuse, resume, fingerprints), predictors,
and latency-aware search (constraints before training, Pareto plot, MnasNet reward)."""
from __future__ import annotations

import json
import random
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from evaluators.latency import LatencySettings, Measurer, ProfileStore
from evaluators.latency import profile as profiling
from evaluators.latency.parts import clear_key_caches, network_keys, part_key
from evaluators.latency.source import LatencySource
from evaluators.latency.table import fit_calibration
from nas.cli.commands import main
from nas.profile import latency as nas_latency
from nas.run.api import search
from search_spaces import Architecture, load_space
from search_spaces.errors import ConfigError
from search_spaces.layout import resolve
from search_spaces.reachable import reachable_parts
from tests.spaces import TINY

FAST = {"warmup": 0, "repeats": 2, "rounds": 2}  # tests check behaviour, not precision


@pytest.fixture
def tiny(tmp_path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


def _cfg(space: Path, out: Path, **extra) -> dict:
    return {**nas_latency.LATENCY_DEFAULTS, **FAST, "space": str(space), "out": str(out), **extra}


@pytest.fixture(scope="module")
def profiled_once(tmp_path_factory) -> Path:
    """The out folder of one finished profile of the tiny space (10 classes, as digits)."""
    base = tmp_path_factory.mktemp("profiled")
    (base / "tiny.yaml").write_text(TINY)
    session = nas_latency.open_session(_cfg(base / "tiny.yaml", base / "out", num_classes=10))
    nas_latency.profile(session, calibrate_n=6)
    return base / "out"


@pytest.fixture
def profiled(profiled_once, tiny, tmp_path):
    """A finished profile of the tiny space under tmp_path/out: a copy of the module's one, reopened
    (as a later process would), so each test may change it."""
    shutil.copytree(profiled_once, tmp_path / "out")
    session = nas_latency.open_session(_cfg(tiny, tmp_path / "out", num_classes=10))
    assert nas_latency.profile(session, calibrate_n=6).measured_now == 0
    return session


@pytest.mark.parametrize("name", ["mbconv", "resnet", "mixed", "convnext", "fused_mbconv", "nasbench_macro"])
def test_every_part_of_every_member_is_reachable(name):
    space = load_space(name)
    parts = reachable_parts(space)
    rng = random.Random(0)
    for _ in range(100):
        layout = resolve(space.sample(rng))
        assert layout.stem in parts.stems and layout.head in parts.heads
        assert all(replace(layer, stage=0, drop_path=0.0) in parts.layers for layer in layout.layers)


@pytest.mark.parametrize("name", ["mbconv", "resnet", "mixed", "convnext", "fused_mbconv", "shufflenet",
                                  "nasbench_macro"])
def test_memoised_network_keys_are_the_keys_of_the_resolved_network(name):
    space, rng = load_space(name), random.Random(1)
    clear_key_caches()
    for depth in (1.0, 1.0, 1.4):  # twice at 1.0: the second walk is served from the memos
        for _ in range(50):
            arch = replace(space.sample(rng), depth=depth)
            layout = resolve(arch)
            expected = (part_key(layout.stem, 10), *(part_key(p, 10) for p in layout.layers),
                        part_key(layout.head, 10))
            assert network_keys(arch, 10) == expected


def test_fingerprint_names_everything_that_changes_latency():
    one, two = LatencySettings(threads=1).fingerprint(), LatencySettings(threads=2).fingerprint()
    assert one != two and one.slug != two.slug and "t1" in one.slug and "b1" in one.slug
    assert one == LatencySettings(threads=1, repeats=99).fingerprint()  # the protocol is not the device
    assert LatencySettings(batch=8).fingerprint() != one
    assert LatencySettings(channels_last=False).fingerprint() != one
    assert one.differences(two) == ["threads: 1 != 2"]
    assert one.runtime_version == torch.__version__


def test_measurements_are_medians_of_interleaved_runs():
    measurer = Measurer(LatencySettings(warmup=1, repeats=6, rounds=3))
    threads = torch.get_num_threads()
    a, b = measurer.measure_many([(torch.nn.Conv2d(8, 8, 3, padding=1), (8, 16, 16)),
                                  (torch.nn.Conv2d(8, 64, 3, padding=1), (8, 32, 32))])
    assert a.repeats == b.repeats == 6 and 0 < a.p25_ms <= a.median_ms <= a.p75_ms
    assert b.median_ms > a.median_ms  # 32x the work
    assert torch.get_num_threads() == threads  # measured with 1 thread, the caller's setting restored


@pytest.mark.parametrize(("settings", "fragment"), [
    ({"device": "tpu"}, "device: 'tpu' is not one of cpu, cuda, cuda:N"),
    ({"threads": 0}, "threads: must be an integer >= 1"),
    ({"dtype": "float64"}, "unknown dtype 'float64'"),
    ({"runtime": "tvm"}, "unknown runtime 'tvm'"),
])
def test_bad_measurement_settings_name_the_field(settings, fragment):
    with pytest.raises(Exception) as error:
        LatencySettings(**settings)
    assert fragment in str(error.value)


def test_a_profile_is_reused_not_measured_again(profiled, tiny, monkeypatch):
    store = profiled.store
    parts_before = (store.path / "parts.csv").read_text()
    nets_before = (store.path / "networks.csv").read_text()
    calls = []
    monkeypatch.setattr(Measurer, "measure_many", lambda self, items: calls.append(items) or [])
    again = nas_latency.open_session(_cfg(tiny, store.path.parents[1], num_classes=10))  # a new process would
    assert again.store.path == store.path
    report = nas_latency.profile(again, calibrate_n=6)
    assert calls == [] and report.measured_now == 0
    assert (store.path / "parts.csv").read_text() == parts_before
    assert (store.path / "networks.csv").read_text() == nets_before


def test_an_interrupted_profile_resumes_with_what_is_missing(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(profiling, "PART_CHUNK", 10)
    session = nas_latency.open_session(_cfg(tiny, tmp_path / "out", num_classes=10))
    total = len(profiling.space_parts(session.space, 10))

    def stop(done, _total):
        if done >= 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        profiling.profile_parts(session.space, session.measurer, session.store, 10, progress=stop)
    assert len(session.store.parts()) == 20
    measured = []
    real = Measurer.measure_many
    monkeypatch.setattr(Measurer, "measure_many", lambda self, items: measured.append(len(items)) or real(self, items))
    table = profiling.profile_parts(session.space, session.measurer, session.store, 10)
    assert sum(measured) == total - 20 and len(table.entries) == total
    keys = pd.read_csv(session.store.path / "parts.csv")["key"]
    assert keys.is_unique


def test_a_profile_for_another_fingerprint_is_not_used(profiled, tiny):
    out = profiled.store.path.parents[1]
    space = load_space(str(tiny))
    with pytest.raises(ConfigError, match="no profile for .*2 threads"):
        LatencySource("table", space, 10, LatencySettings(threads=2, **FAST), out=out)
    # named explicitly, a foreign profile is read as that device's table, but never measured into
    foreign = LatencySource("table", space, 10, LatencySettings(threads=2, **FAST), profile=profiled.store.path)
    assert foreign.fingerprint.threads == 1 and not foreign.local
    with pytest.raises(ConfigError, match="threads: 1 != 2"):
        LatencySource("measured", space, 10, LatencySettings(threads=2, **FAST), profile=profiled.store.path)
    with pytest.raises(ConfigError, match="measured on another setup .*threads: 1 != 2"):
        ProfileStore(profiled.store.path, LatencySettings(threads=2).fingerprint())
    with pytest.raises(ConfigError, match="is for another setup"):
        nas_latency.open_session(_cfg(tiny, out, threads=2, profile=str(profiled.store.path)))


def test_table_prediction_is_the_calibrated_sum_of_its_parts(profiled):
    table = profiled.store.table()
    arch = profiled.space.sample(random.Random(3))
    parts = sum(table.entries[k] for k in network_keys(arch, 10))
    c = table.calibration
    assert c.networks == 6 and table.predict(arch, 10) == pytest.approx(c(parts, {
        k: v / parts for k, v in table.kind_sums(arch, 10).items()}))
    assert table.block_sum(arch, 10) == pytest.approx(parts)


def test_calibration_recovers_scale_and_offset():
    sums = [1.0, 2.0, 5.0, 9.0]
    c = fit_calibration(sums, [1.2 * s + 0.5 for s in sums])
    assert c.scale == pytest.approx(1.2) and c.offset_ms == pytest.approx(0.5)


def test_fit_and_eval_score_every_predictor(profiled):
    predictor = nas_latency.fit(profiled, n=14)
    assert predictor.trained_on == 20  # 6 calibration + 14 fit networks
    report = nas_latency.evaluate(profiled, n=8, passes=2, throughput_n=50)
    names = [a.predictor for a in report.accuracy]
    assert names == ["table", "learned", "macs-linear"] and report.passes.shape == (2, 8)
    for a in report.accuracy + [report.noise]:
        assert a.rmse_ms >= 0 and 0 <= a.within_5 <= a.within_10 <= 100 and -1 <= a.kendall_tau <= 1
    assert all(a.predictions_per_s > 0 for a in report.accuracy)
    # the held-out networks are none of the fitted ones
    fitted = set(profiled.store.networks(profiled.space.name)["arch"])
    held_out = nas_latency.sample_distinct(profiled.space, 8, nas_latency.SEEDS["eval"],
                                           exclude={profiled.space.key(Architecture.parse(a)) for a in fitted})
    assert not {str(a) for a in held_out} & fitted


@pytest.mark.integration
def test_a_latency_constrained_search_trains_only_networks_under_the_bound(profiled, tiny, tmp_path):
    table = profiled.store.table()
    rng = random.Random(0)
    predicted = sorted(table.predict(profiled.space.sample(rng), 10) for _ in range(200))
    bound = predicted[len(predicted) // 3]  # about a third of the space is feasible
    result = search(space=str(tiny), strategy="evolution", evaluator="proxy", budget=6, seed=0,
                    out=str(tmp_path / "out"), max_latency_ms=bound, latency={"name": "table", **FAST},
                    evaluator_options={"epochs": 1}, population=4, sample_size=2)
    ok = result.trials[result.trials["status"] == "ok"]
    assert len(ok) == 6 and (ok["latency_ms"] <= bound).all() and (ok["latency_source"] == "table").all()
    assert (ok["accuracy"] > 0).all()
    for text, value in zip(ok["arch"], ok["latency_ms"]):
        assert value == pytest.approx(table.predict(profiled.space.from_string(text), 10))


@pytest.mark.integration
def test_a_multi_objective_latency_search_draws_its_pareto_front(profiled, tiny, tmp_path):
    result = search(space=str(tiny), strategy="evolution", evaluator="proxy", budget=5, seed=1,
                    out=str(tmp_path / "out"), objectives=["accuracy", "latency_ms:min"],
                    latency={"name": "table", **FAST}, evaluator_options={"epochs": 1}, population=4, sample_size=2)
    assert (result.run_dir / "pareto.png").stat().st_size > 0
    assert len(result.pareto) >= 1 and result.trials["latency_ms"].notna().all()


@pytest.mark.integration
def test_mnas_reward_combines_accuracy_and_latency(profiled, tiny, tmp_path):
    result = search(space=str(tiny), strategy="random", evaluator="proxy", budget=3, seed=0,
                    out=str(tmp_path / "out"), objectives="mnas",
                    latency={"name": "table", "target_ms": 1.0, "w": -0.07, **FAST}, evaluator_options={"epochs": 1})
    rows = result.trials
    expected = rows["accuracy"] * (rows["latency_ms"] / 1.0) ** -0.07
    assert rows["mnas"].to_numpy() == pytest.approx(expected.to_numpy())
    assert result.best["mnas"] == rows["mnas"].max()


def test_measured_latency_needs_no_profile(tiny, tmp_path):
    result = search(space=str(tiny), strategy="random", evaluator="cost", budget=2, seed=0,
                    out=str(tmp_path / "out"), objectives=["latency_ms:min"], latency=FAST)
    assert (result.trials["latency_source"] == "measured").all() and (result.trials["latency_ms"] > 0).all()


def test_without_a_profile_or_a_latency_objective_nothing_is_timed(tiny, tmp_path):
    result = search(space=str(tiny), strategy="random", evaluator="cost", budget=2, seed=0, out=str(tmp_path))
    assert "latency_ms" not in result.trials


@pytest.mark.integration
def test_latency_cli_profiles_and_reports(tiny, tmp_path, capsys):
    out = tmp_path / "out"
    args = [f"space={tiny}", f"out={out}", "warmup=0", "repeats=1", "rounds=1", "progress=false", "num_classes=10"]
    assert main(["latency", "profile", *args, "calibrate=4"]) == 0
    assert "parts (" in capsys.readouterr().out
    assert main(["latency", "fit", *args, "n=10"]) == 0
    assert main(["latency", "eval", *args, "n=4", "json=true"]) == 0
    printed = capsys.readouterr().out
    assert '"predictor": "learned"' in printed and '"noise"' in printed


@pytest.mark.parametrize(("argv", "fragment"), [
    (["latency", "profile", "threads=0"], "threads: must be an integer >= 1"),
    (["latency", "profile", "thread=1"], "unknown key 'thread' (did you mean threads?)"),
    (["latency", "eval", "space=mbconv", "profile=/nonexistent"], "holds no latency profile"),
    (["run", "latency=tabel"], "unknown latency 'tabel' (did you mean table?)"),
    (["run", "objectives=mnas", "latency=measured"], "latency.target_ms: objectives=mnas needs"),
    (["run", "latency=measured", "latency.threads=0"], "latency.threads: must be an integer >= 1"),
])
def test_bad_latency_input_is_a_one_line_error(argv, fragment, capsys, tmp_path):
    assert main([*argv, f"out={tmp_path}"] if argv[0] == "run" else argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())  # nothing written


@pytest.mark.integration
def test_onnx_runtime_profiles_are_their_own_fingerprint(tiny, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    settings = LatencySettings(runtime="onnxruntime", **FAST)
    fingerprint = settings.fingerprint()
    assert fingerprint.runtime == "onnxruntime" and fingerprint.runtime_version == ort.__version__
    assert fingerprint != LatencySettings(**FAST).fingerprint()
    session = nas_latency.open_session(_cfg(tiny, tmp_path, runtime="onnxruntime", num_classes=10))
    report = nas_latency.profile(session, calibrate_n=3)
    assert report.measured_now == report.parts and "onnxruntime" in str(session.store.path)
    assert all(v > 0 for v in session.store.parts().values())


def test_auto_uses_the_learned_predictor_only_where_it_beat_the_table(profiled, tiny):
    predictor = nas_latency.fit(profiled, n=14)
    # Both errors were measured (a NaN or a missing table error would make the choice meaningless),
    # are percentages of real latencies, and the choice follows them.
    assert 0 < predictor.cv_mape < 100 and predictor.table_mape is not None and 0 < predictor.table_mape < 100
    assert predictor.beats_table == (predictor.cv_mape < predictor.table_mape)
    source = LatencySource("auto", load_space(str(tiny)), 10, LatencySettings(**FAST),
                           out=profiled.store.path.parents[1])
    assert source.source == ("learned" if predictor.beats_table else "table")


def test_the_learned_predictor_is_stored_as_data_not_a_pickle(profiled, tiny):
    predictor = nas_latency.fit(profiled, n=14)
    path = profiled.store.path
    assert (path / "learned.json").is_file() and not list(path.glob("*.pkl"))
    json.loads((path / "learned.json").read_text())  # plain JSON
    loaded = profiled.store.learned()
    space = load_space(str(tiny))
    archs = [space.sample(random.Random(i)) for i in range(8)]
    table = profiled.store.table()
    assert np.array_equal(loaded.predict(space, archs, table), predictor.predict(space, archs, table))
    # a pickle planted in a profile folder is never unpickled
    (path / "learned.json").unlink()
    (path / "learned.pkl").write_bytes(b"cos\nsystem\n(S'touch /tmp/pwned-by-pickle'\ntR.")
    assert profiled.store.learned() is None and not Path("/tmp/pwned-by-pickle").exists()
