"""``max_latency_ms=baseline``: a run bounded by its first baseline's latency, timed once when it starts.

The Measurer is replaced by a deterministic stand-in (a network's latency is its MACs in millions,
halved at int8) so that the bound, the refusals and resume are checked exactly, in seconds.
"""
from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml

import evaluators.proxy
import nas
from evaluators.latency.measure import Measurement, Measurer
from nas.cli.commands import main
from nas.report.summary import bound_verdict, describe_bound
from search_spaces.arch import Architecture
from search_spaces.cost import cost
from search_spaces.errors import ConfigError, NasError
from search_spaces.registry import load_space
from tests.spaces import TINY

LATENCY = {"name": "measured", "warmup": 0, "repeats": 2, "rounds": 2}


def fake_ms(arch, num_classes: int = 1000, dtype: str = "float32") -> float:
    arch = Architecture.parse(arch) if isinstance(arch, str) else arch
    return cost(arch, num_classes).macs / 1e6 * (0.5 if dtype == "int8" else 1.0)


@pytest.fixture
def timed(monkeypatch) -> list[str]:
    """Every network the Measurer times, in order (the stand-in's log)."""
    calls: list[str] = []

    def network(self, arch, num_classes=1000):
        calls.append(str(arch))
        ms = fake_ms(arch, num_classes, self.settings.dtype)
        return Measurement(ms, ms, ms, ms, 1)

    monkeypatch.setattr(Measurer, "network", network)
    return calls


@pytest.fixture
def space_file(tmp_path) -> tuple[Path, str]:
    """The tiny space with a baseline of middling latency (so some candidates are slower), and it."""
    plain = tmp_path / "plain.yaml"
    plain.write_text(TINY)
    space = load_space(str(plain))
    rng = random.Random(0)
    members = sorted({space.to_string(space.sample(rng)) for _ in range(40)}, key=lambda a: fake_ms(a, 10))
    baseline = members[len(members) // 2]
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY.replace("name: tiny\n", f"name: tiny\nbaselines: ['{baseline}']\n"))
    return path, baseline


class Trains:
    """A stand-in for a training evaluator: instant, noisy, ``trains`` like the proxy."""

    name = "trains"
    trains = True
    num_classes = 10

    def __call__(self, arch, report=None, repeat=0):
        return {"accuracy": 50 + cost(arch, 10).params / 1e4 + repeat}


def _search(space: Path, out, **kwargs):
    options = {"strategy": "random", "budget": 5, "seed": 0, "latency": LATENCY, "select": "none"}
    return nas.search(space=str(space), out=out, **{**options, **kwargs})


def test_the_bound_is_the_baselines_measured_latency_and_config_yaml_records_it(space_file, timed, tmp_path):
    space, baseline = space_file
    result = _search(space, tmp_path, evaluator="cost", max_latency_ms="baseline")
    bound = fake_ms(baseline, 1000)
    assert result.problem.constraints == {"latency_ms": pytest.approx(bound)}
    saved = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    assert saved["max_latency_ms"] == "baseline"
    assert saved["latency_bound"]["ms"] == pytest.approx(bound)
    assert saved["latency_bound"]["source"] == "measured" and saved["latency_bound"]["metric"] == "latency_ms"
    assert saved["latency_bound"]["text"] == f"latency bound {bound:.3g} ms = baseline 1 measured on this machine"
    trials = result.trials
    assert (trials[trials["stage"] == "search"]["latency_ms"] <= bound).all()
    # the baseline is evaluated, not refused by its own bound, and reports the very number
    row = trials[trials["stage"] == "baseline"]
    assert list(row["status"]) == ["ok"] and row["latency_ms"].iloc[0] == pytest.approx(bound)
    assert timed.count(baseline) == 1  # timed once: the bound and its row share the measurement
    summary = yaml.safe_load((result.run_dir / "best.yaml").read_text())["latency_bound"]
    assert summary["refused"] > 0 and summary["ms"] == pytest.approx(bound)


def test_resume_keeps_the_recorded_bound_without_timing_the_baseline_again(space_file, timed, tmp_path,
                                                                           monkeypatch):
    space, baseline = space_file
    first = _search(space, tmp_path, evaluator="cost", max_latency_ms="baseline", budget=3, run_id="r")
    timed.clear()
    bound = first.config["latency_bound"]["ms"]
    # a machine twice as slow: candidates time slower, but the bound stays the one recorded
    slower = Measurer.network

    def twice(self, arch, num_classes=1000):
        m = slower(self, arch, num_classes)
        return Measurement(*(2 * v for v in (m.latency_ms, m.median_ms, m.p25_ms, m.p75_ms)), m.repeats)

    monkeypatch.setattr(Measurer, "network", twice)
    resumed = _search(space, tmp_path, evaluator="cost", budget=5, run_id="r", resume=True)
    assert baseline not in timed and len(resumed.trials) == len(first.trials) + 2
    assert resumed.problem.constraints == {"latency_ms": bound}
    assert yaml.safe_load((resumed.run_dir / "config.yaml").read_text())["latency_bound"]["ms"] == bound
    with pytest.raises(ConfigError, match="cannot change max_latency_ms when resuming run r"):
        _search(space, tmp_path, evaluator="cost", budget=6, run_id="r", resume=True, max_latency_ms=30.0)


def test_a_new_run_of_a_saved_config_times_the_baseline_again(space_file, timed, tmp_path, capsys):
    space, baseline = space_file
    first = _search(space, tmp_path, evaluator="cost", max_latency_ms="baseline", budget=2, run_id="r")
    timed.clear()
    code = main(["run", f"config={first.run_dir / 'config.yaml'}", "run_id=again", "progress=false"])
    assert code == 0, capsys.readouterr().err
    again = yaml.safe_load((tmp_path / "runs" / "again" / "config.yaml").read_text())
    assert timed[0] == baseline and again["latency_bound"]["ms"] == pytest.approx(fake_ms(baseline, 1000))


def test_the_default_bounds_a_training_evaluator_and_not_the_cost_model(space_file, timed, tmp_path):
    space, baseline = space_file
    trained = _search(space, tmp_path / "a", evaluator=Trains())
    assert trained.config["max_latency_ms"] == "baseline"
    assert trained.problem.constraints == {"latency_ms": pytest.approx(fake_ms(baseline, 10))}
    assert trained.summary["latency_bound"]["verdict"].startswith("the winner is ")
    timed.clear()
    costed = _search(space, tmp_path / "b", evaluator="cost", latency="auto")
    assert costed.problem.constraints == {} and not timed and "latency_ms" not in costed.trials
    saved = yaml.safe_load((costed.run_dir / "config.yaml").read_text())
    assert saved["max_latency_ms"] is None and "latency_bound" not in saved  # what the run was
    # a latency objective is hardware-aware already: the default leaves it alone
    pareto = _search(space, tmp_path / "c", evaluator=Trains(), objectives=["accuracy", "latency_ms:min"])
    assert pareto.problem.constraints == {} and "latency_bound" not in pareto.config


def test_int8_bounds_the_int8_latency_by_the_baselines_int8_latency(space_file, timed, tmp_path, monkeypatch):
    space, baseline = space_file
    monkeypatch.setattr(evaluators.proxy.ProxyEvaluator, "__call__",
                        lambda self, arch, report=None, repeat=0: {"accuracy": 60.0, "accuracy_int8": 59.0})
    result = _search(space, tmp_path, evaluator="proxy", quantize="int8", max_latency_ms="baseline", budget=3)
    bound = fake_ms(baseline, 10, "int8")
    assert result.problem.constraints == {"latency_int8_ms": pytest.approx(bound)}
    assert result.config["latency_bound"]["metric"] == "latency_int8_ms"
    text = f"int8 latency bound {bound:.3g} ms = baseline 1 int8 measured on this machine"
    assert result.config["latency_bound"]["text"] == text
    assert (result.trials["latency_int8_ms"] <= bound + 1e-9).all()


@pytest.mark.parametrize("argv, fragment", [
    (["max_latency_ms=baseline", "baselines=none"], "max_latency_ms=baseline: the run has no baseline"),
    (["max_latency_ms=baseline", "space=nasbench_macro"], "space nasbench_macro names none"),
    (["max_latency_ms=baseline", "latency=none"], "max_latency_ms=baseline: latency=none times no candidate"),
    (["max_latency_ms=baseline", "constraints.latency_ms=20"], "bounds latency_ms already"),
    (["max_latency_ms=foo"], "max_latency_ms: expected a number of milliseconds, baseline or none, got 'foo'"),
])
def test_a_baseline_bound_that_cannot_apply_is_one_line_exit_2_and_writes_nothing(capsys, tmp_path, timed, argv,
                                                                                   fragment):
    out = tmp_path / "out"
    code = main(["run", "evaluator=cost", f"out={out}", "progress=false", *argv])
    err = capsys.readouterr().err
    assert code == 2 and fragment in err, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists() and not timed


def test_a_space_without_networks_cannot_be_bounded_by_a_baseline(tmp_path):
    space = nas.CategoricalSpace({"a": [1, 2, 3]})
    with pytest.raises(NasError, match="space .* has no networks to time"):
        nas.search(space, evaluator=lambda a: a["a"], out=tmp_path, max_latency_ms="baseline")
    assert not any(tmp_path.iterdir())
    assert nas.search(space, evaluator=lambda a: a["a"], budget=2, out=tmp_path).problem.constraints == {}


def test_the_cli_summary_states_the_bound_where_it_came_from_and_the_verdict(space_file, timed, tmp_path, capsys):
    space, baseline = space_file
    code = main(["run", f"space={space}", "evaluator=cost", "strategy=random", "budget=3",
                 "max_latency_ms=baseline", "latency=measured", f"out={tmp_path}", "progress=false"])
    out = capsys.readouterr().out
    assert code == 0
    bound = fake_ms(baseline, 1000)
    assert f"latency bound {bound:.3g} ms = baseline 1 measured on this machine" in out
    assert "the winner is better on params than baseline 1 at " in out


SUMMARY = {"objectives": ["accuracy:max"],
           "latency_bound": {"ms": 20.0, "metric": "latency_ms", "baseline": "efficientnet_b0", "arch": "B0",
                             "text": "latency bound 20 ms = efficientnet_b0 measured on this machine",
                             "refused": 3},
           "best": {"arch": "W", "accuracy": 93.0, "latency_ms": 18.0, "n": 3}}


@pytest.mark.parametrize("difference, std, expected", [
    (2.0, 0.5, "the winner is more accurate than efficientnet_b0 at 18 ms against its 20 ms (accuracy +2 ± 0.5)"),
    (0.4, 0.5, "as accurate as efficientnet_b0 at 18 ms against its 20 ms (accuracy +0.4 ± 0.5, within noise)"),
    (-2.0, 0.5, "the winner is less accurate than efficientnet_b0"),
    (1.0, None, "(accuracy +1; no repeats, so the noise is unknown)"),
])
def test_the_verdict_weighs_the_difference_against_the_noise(difference, std, expected):
    row = {"name": "efficientnet_b0", "arch": "B0", "accuracy": 93.0 - difference, "latency_ms": 20.0,
           "difference": difference, **({"difference_std": std} if std is not None else {})}
    verdict = bound_verdict({**SUMMARY, "baselines": [row]})
    assert expected in verdict
    lines = describe_bound({**SUMMARY, "constraints": {"latency_ms": 20.0}, "baselines": [row]})
    assert lines[0] == ("latency bound 20 ms = efficientnet_b0 measured on this machine; 3 proposals broke it "
                        "and were not evaluated") and lines[1] == verdict


def test_a_refused_or_failed_baseline_gives_no_comparison():
    row = {"name": "efficientnet_b0", "arch": "B0", "status": "failed"}
    assert bound_verdict({**SUMMARY, "baselines": [row]}) == "efficientnet_b0 failed: no comparison"
    assert "nothing to compare" in bound_verdict({**SUMMARY, "best": None})
