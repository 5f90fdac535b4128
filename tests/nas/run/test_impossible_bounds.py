"""Bounds no member can meet are refused at the start; a run that finds nothing feasible says so.

A bound of zero or less, or below the space's cheapest member (params and MACs exactly, latency
from the run's latency source), is one line, exit code 2, within seconds and with nothing written.
A run whose bounds leave few members searches them and reports the refusals; one that ends with no
feasible candidate evaluated names no winner and exits with code 3 (``NOTHING_FOUND``).
"""
from __future__ import annotations

import io
import re
import time
from pathlib import Path

import pytest
from rich.console import Console

import nas
import nas.run.api
from evaluators.latency.measure import Measurement, Measurer
from nas.cli.commands import NOTHING_FOUND, main
from nas.progress import ProgressBar
from nas.run.trial import Progress, Trial
from nas.strategies.base import NearestMiss
from search_spaces.cost import cost
from search_spaces.macro import extreme_member
from search_spaces.registry import load_space
from tests.spaces import TINY

FAST_TIMING = ["latency.warmup=0", "latency.repeats=2", "latency.rounds=2"]


@pytest.fixture
def tiny(tmp_path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


@pytest.fixture
def fake_latency(monkeypatch) -> None:
    """A network's latency is its MACs in millions: exact and instant (no timing noise)."""

    def network(self, arch, num_classes=1000):
        ms = cost(arch, num_classes).macs / 1e6
        return Measurement(ms, ms, ms, ms, 1)

    monkeypatch.setattr(Measurer, "network", network)


def run(out: Path, *args: str) -> int:
    return main(["run", "evaluator=cost", "strategy=random", "progress=false", f"out={out}", *args])


def stopped_line(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("stopped: "))


IMPOSSIBLE = [
    ("negative latency", ["space=mbconv", "max_latency_ms=-5", "budget=5"], "max_latency_ms: must be > 0, got -5"),
    ("zero params", ["space=mbconv", "max_params=0", "budget=3"], "max_params: must be > 0, got 0"),
    ("zero macs as a constraint", ["space=mbconv", "constraints.macs=0", "budget=3"],
     "constraints.macs: must be > 0, got 0"),
    ("params below the smallest member", ["space=mbconv", "max_params=1", "budget=3"],
     "max_params: 1 is below the smallest member of mbconv ("),
    ("macs below the smallest member", ["space=mbconv", "max_macs=1", "budget=3"],
     "max_macs: 1 is below the smallest member of mbconv ("),
    ("latency below the fastest member, measured", ["space=TINY", "max_latency_ms=0.01", "latency=measured",
                                                   "budget=3", *FAST_TIMING],
     "max_latency_ms: 0.01 ms is below the fastest member of tiny ("),
]


@pytest.mark.parametrize("case, args, fragment", IMPOSSIBLE, ids=[c[0] for c in IMPOSSIBLE])
def test_a_bound_no_member_meets_is_one_line_and_writes_nothing(capsys, tmp_path, tiny, case, args, fragment):
    out = tmp_path / "out"
    args = [a.replace("TINY", str(tiny)) for a in args]
    began = time.monotonic()
    code = run(out, *args)
    took = time.monotonic() - began
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert fragment in err, err
    assert "nothing could be evaluated" in err or "no network could meet it" in err, err
    assert not out.exists()
    assert took < 10, took


def test_the_smallest_member_is_named_with_its_exact_params(capsys, tmp_path):
    space = load_space("mbconv")
    least = cost(extreme_member(space, lambda a: cost(a).params, largest=False)).params
    assert run(tmp_path / "out", "space=mbconv", "max_params=1", "budget=3") == 2
    named = int(re.search(r"\(([\d,]+) params\)", capsys.readouterr().err).group(1).replace(",", ""))
    assert named <= least  # the check's search finds the true minimum, never a larger member


def test_latency_from_a_source_refuses_below_the_fastest_member(capsys, tmp_path, tiny, fake_latency):
    space = load_space(str(tiny))
    fastest = cost(extreme_member(space, lambda a: cost(a).macs, largest=False)).macs / 1e6
    out = tmp_path / "out"
    assert run(out, f"space={tiny}", f"max_latency_ms={fastest * 0.4}", "latency=measured", "budget=3") == 2
    err = capsys.readouterr().err
    assert "below the fastest member of tiny" in err and "measured for its smallest-MACs member" in err, err
    assert not out.exists()


def test_a_bound_few_members_meet_runs_and_reports_the_refusals(capsys, tmp_path, tiny):
    space = load_space(str(tiny))
    least = cost(extreme_member(space, lambda a: cost(a).params, largest=False)).params
    out = tmp_path / "out"
    code = run(out, f"space={tiny}", f"max_params={least}", "budget=4", "select=none", "baselines=none")
    text = capsys.readouterr().out
    assert code == 0, text
    stopped = stopped_line(text)
    assert re.search(r"no new feasible candidate: \d+ proposals broke params <= ", stopped), stopped
    assert "no winner" not in stopped


def test_a_run_with_no_feasible_candidate_names_no_winner(capsys, tmp_path, tiny, monkeypatch):
    # The start's check passed (as a measured stand-in can let through): the run itself must be honest.

    monkeypatch.setattr(nas.run.api, "check_reachable", lambda *a, **k: None)
    out = tmp_path / "out"
    code = run(out, f"space={tiny}", "max_params=1", "budget=3", "baselines=none")
    text = capsys.readouterr().out
    assert code == NOTHING_FOUND == 3, text
    stopped = stopped_line(text)
    assert "no feasible candidate was evaluated, so there is no winner" in stopped, stopped
    assert "the winner is" not in stopped, stopped


def test_a_measured_bound_the_stand_in_lets_through_ends_with_exit_3(capsys, tmp_path, tiny, fake_latency):
    # Between half the smallest-MACs member's latency and its latency: accepted, yet no member meets it.
    space = load_space(str(tiny))
    fastest = cost(extreme_member(space, lambda a: cost(a).macs, largest=False)).macs / 1e6
    code = run(tmp_path / "out", f"space={tiny}", f"max_latency_ms={fastest * 0.75}", "latency=measured",
               "budget=3", "baselines=none")
    text = capsys.readouterr().out
    assert code == NOTHING_FOUND, text
    assert "no winner" in stopped_line(text)


def test_the_progress_bar_counts_refused_proposals():
    console = Console(file=io.StringIO(), width=200, force_terminal=False)
    bar = ProgressBar(console)
    bar.start("r", 5, "accuracy")
    trial = Trial(0, "a", "ok", {}, 0.0, "", None, 0, "search")
    bar.update(Progress(trial=trial, done=1, budget=5, elapsed_s=0.0, best=None, metric="accuracy", refused=7))
    bar.close()
    assert "7 refused by constraints" in console.file.getvalue()


def test_the_progress_bar_names_the_nearest_miss():
    console = Console(file=io.StringIO(), width=200, force_terminal=False)
    bar = ProgressBar(console)
    bar.start("r", 5, "accuracy")
    trial = Trial(0, "a", "ok", {}, 0.0, "", None, 0, "search")
    bar.update(Progress(trial=trial, done=1, budget=5, elapsed_s=0.0, best=None, metric="accuracy", refused=12,
                        nearest="23.1 ms > 20 ms"))
    bar.close()
    assert "12 refused by constraints, nearest 23.1 ms > 20 ms" in console.file.getvalue()


def test_the_nearest_miss_is_the_refused_proposal_closest_to_the_bound(tmp_path, tiny, fake_latency, monkeypatch):
    # Bound: just above the smallest-MACs member's latency (ms = MACs / 1e6 here): most proposals are refused.
    space = load_space(str(tiny))
    fastest = cost(extreme_member(space, lambda a: cost(a).macs, largest=False)).macs / 1e6
    noted: list[float] = []  # every refusal's latency
    note = NearestMiss.note

    def spy(self, violation, metrics, constraints):
        noted.append(metrics["latency_ms"])
        note(self, violation, metrics, constraints)

    monkeypatch.setattr(NearestMiss, "note", spy)
    events: list[Progress] = []
    result = nas.search(space=str(tiny), evaluator="cost", strategy="random", budget=4, out=tmp_path / "out",
                        max_latency_ms=fastest * 1.2, latency="measured", baselines="none", select="none",
                        progress=events.append)
    last = events[-1]
    assert last.refused > 0 and noted
    value, bound = (float(x) for x in re.fullmatch(r"([\d.e+-]+) ms > ([\d.e+-]+) ms", last.nearest).groups())
    assert bound == pytest.approx(fastest * 1.2, rel=1e-2)
    assert value == pytest.approx(min(noted), rel=1e-2) and value > bound
    assert result.problem.misses.describe() == last.nearest


def test_a_resumed_run_keeps_its_nearest_miss(tmp_path, tiny):
    space = load_space(str(tiny))
    least = cost(extreme_member(space, lambda a: cost(a).params, largest=False)).params
    out = tmp_path / "out"
    first = nas.search(space=str(tiny), evaluator="cost", strategy="random", budget=2, out=out, run_id="r",
                       max_params=least * 1.05, baselines="none", select="none")
    assert first.problem.misses.describe().startswith("params ")
    # The same budget: nothing more is proposed, so the nearest miss can only come from state.json.
    again = nas.search(out=out, run_id="r", resume=True, budget=2)
    assert again.problem.misses.describe() == first.problem.misses.describe()
