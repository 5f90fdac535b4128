"""A latency is wall-clock milliseconds: a machine that changes speed between rounds cannot change the
unit, the first (cold) call of each round is not timed, and profiles in the old reference-scaled unit
are refused with one line."""
from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from evaluators.latency import LatencySettings, Measurer, ProfileStore, reference
from evaluators.latency.fingerprint import LEGACY_UNIT, UNIT
from nas.cli.commands import main
from search_spaces.errors import ConfigError
from tests.paths import BENCHMARKS

sys.path.insert(0, str(BENCHMARKS))  # the benchmarks' own stopwatch, which imports nothing of evaluators
from stopwatch import ENGINES, stopwatch


class Machine:
    """A fake clock and a module that takes ``module_ms`` (and a reference ``reference_ms``) at the
    machine's usual speed, times the speed factor of the current round; the first call of a round
    (after other work or a weight move) costs ``cold`` times more."""

    def __init__(self, slowdowns: list[float], module_ms: float = 1.0, reference_ms: float = 0.5,
                 cold: float = 3.0) -> None:
        self.now, self.round, self.slowdowns = 0.0, 0, slowdowns
        self.module_ms, self.reference_ms, self.cold = module_ms, reference_ms, cold
        self.warm = False

    @property
    def slowdown(self) -> float:
        return self.slowdowns[self.round % len(self.slowdowns)]

    def perf_counter(self) -> float:
        return self.now

    def module(self) -> float:
        ms = self.module_ms * self.slowdown * (1 if self.warm else self.cold)
        self.warm = True
        self.now += ms / 1e3
        return ms

    def move(self) -> None:
        self.round += 1
        self.warm = False

    def reference(self) -> None:
        self.now += self.reference_ms * self.slowdown / 1e3
        self.warm = False  # the reference evicts the module from cache


def _measure(monkeypatch, machine: Machine, **settings) -> float:
    monkeypatch.setattr(reference, "time", SimpleNamespace(perf_counter=machine.perf_counter))
    monkeypatch.setattr(reference, "REFRESH_S", 0.0)  # a reference timing before every group
    monkeypatch.setattr(reference, "reference_workload", lambda name: machine.reference)
    monkeypatch.setattr(Measurer, "_runner", lambda self, module, shape: (machine.module, machine.move))
    s = LatencySettings(warmup=1, repeats=20, rounds=20, **settings)
    return Measurer(s).measure_many([(None, (3, 8, 8))])[0].latency_ms


def test_stretches_at_half_or_double_speed_leave_a_latency_in_the_machines_usual_milliseconds(monkeypatch):
    # 20 rounds: a stretch of 6 at half speed and one of 6 at double speed amid the usual speed; the
    # reference's running median follows a change after two rounds, so two rounds at each change
    # are scaled as the stretch before: the median is exact, the faster half's mean takes in the
    # four lagging rounds that read as double speed, and raw times take in the whole fast stretch
    slowdowns = [1] * 4 + [2] * 6 + [1] * 4 + [0.5] * 6
    assert _measure(monkeypatch, Machine(slowdowns), reference="block", statistic="median") == pytest.approx(1.0)
    lower = _measure(monkeypatch, Machine(slowdowns), reference="block", statistic="lower-half")
    raw = _measure(monkeypatch, Machine(slowdowns), reference="none", statistic="lower-half")
    assert lower == pytest.approx(0.8) and raw == pytest.approx(0.7)


@pytest.mark.parametrize("speed", [0.5, 2.0])
def test_a_machine_uniformly_faster_or_slower_reads_as_such(monkeypatch, speed):
    # no stored nominal: the milliseconds are today's clock, whatever a profile saw before
    for ref in ("block", "none"):
        assert _measure(monkeypatch, Machine([speed]), reference=ref) == pytest.approx(speed)


def test_the_first_call_of_each_round_is_not_timed(monkeypatch):
    # each round's first call costs 3x (cold caches); a stopwatch loop of back-to-back calls sees 1x
    for ref in ("block", "none"):
        assert _measure(monkeypatch, Machine([1.0], cold=3.0), reference=ref) == pytest.approx(1.0)


def _legacy(tmp_path, name: str = "old"):
    fingerprint = LatencySettings().fingerprint().to_dict()
    del fingerprint["unit"]  # written before the field: reference-scaled
    folder = tmp_path / "latency" / name
    folder.mkdir(parents=True)
    (folder / "fingerprint.json").write_text(json.dumps(fingerprint))
    (folder / "parts.csv").write_text("key,latency_ms,median_ms,p25_ms,p75_ms,repeats\nstem:a,1,1,1,1,20\n")
    return folder


def test_a_new_fingerprint_names_its_unit_and_an_old_one_reads_as_reference_scaled(tmp_path):
    fingerprint = LatencySettings().fingerprint()
    assert fingerprint.unit == UNIT == "wall-clock" and "wall-clock ms" in fingerprint.describe()
    old = json.loads((_legacy(tmp_path) / "fingerprint.json").read_text())
    assert "unit" not in old and LEGACY_UNIT == "reference-scaled"


def test_an_old_profile_is_refused_with_one_line_that_says_to_re_profile(tmp_path):
    folder = _legacy(tmp_path)
    with pytest.raises(ConfigError) as error:
        ProfileStore(folder)
    message = str(error.value)
    assert "\n" not in message and "reference-scaled" in message and "nas latency profile" in message
    # found beside the new one (same setup, old unit): the "no profile" error names it
    store = ProfileStore.for_fingerprint(tmp_path, LatencySettings().fingerprint())
    with pytest.raises(ConfigError, match="old reference-scaled unit.*re-profile"):
        store.table()


def test_an_old_profile_named_on_the_command_line_exits_2_in_one_line(tmp_path, capsys):
    folder = _legacy(tmp_path)
    assert main(["latency", "eval", "space=mbconv", f"profile={folder}", "progress=false"]) == 2
    err = capsys.readouterr().err
    assert "re-profile" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_the_benchmarks_stopwatch_imports_none_of_nas_timing_code():
    benchmarks = BENCHMARKS
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import stopwatch; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('evaluators', 'nas')))")
    done = subprocess.run([sys.executable, "-c", code, str(benchmarks)], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_stopwatch_times_every_engine_in_positive_milliseconds():
    arch = "mbconv@32_relu:stem_k3_s2_c8:mb_k3_e1_c8:head_c16"
    for engine in ENGINES:
        (ms,) = stopwatch([arch], num_classes=10, engine=engine, warmup=1, rounds=2, runs=2)
        assert ms > 0
