"""nas report: one self-contained HTML page per run, read back from the run's files."""
from __future__ import annotations

import re
import shutil

import yaml

from nas.cli.commands import main
from nas.report.report import render
from nas.run.api import search
from nas.run.folder import run_folder
from search_spaces.space import CategoricalSpace
from tests.runfiles import WINNER, write_run

SPACE = {"a": list(range(5)), "b": list(range(5))}


def flaky(arch):
    if arch["a"] == 0:
        raise RuntimeError("out of memory")
    if arch["b"] == 4:
        return {"status": "failed", "error": "diverged: loss is nan"}
    return {"accuracy": arch["a"] * 10 + arch["b"], "params": 100 * arch["a"]}


def test_the_report_shows_settings_best_plots_and_failures(tmp_path, capsys):
    result = search(space=CategoricalSpace(SPACE), strategy="random", evaluator=flaky, budget=15,
                    out=tmp_path, run_id="r1", seed=3)
    assert main(["report", "r1", "--out", str(tmp_path)]) == 0
    page = (tmp_path / "runs" / "r1" / "report.html").read_text()
    assert "report:" in capsys.readouterr().out
    assert "<h1>nas run r1</h1>" in page and "strategy" in page and "random" in page
    best = result.best["arch"]
    top = page.split("<h2>Top 10 architectures by mean accuracy</h2>")[1].split("<h2>")[0]
    assert top.index(best.replace('"', "&quot;")) < top.index("</tr>", top.index("</tr>") + 1)  # first row
    assert re.search(r'src="data:image/png;base64,[A-Za-z0-9+/=]{200,}"', page)  # progress.png inlined
    trials = result.trials
    failed = trials[trials["status"] != "ok"]
    assert f"Failures and early stops ({len(failed)})" in page
    n_oom = int(failed["error"].str.startswith("RuntimeError").sum())
    n_nan = int(failed["error"].str.startswith("diverged").sum())
    assert n_oom and n_nan
    assert f"<td>RuntimeError</td><td>{n_oom}</td>" in page and f"<td>diverged</td><td>{n_nan}</td>" in page
    assert "seed" in page and "<td>budget</td><td>15</td>" in page  # the settings


def test_report_of_the_latest_run_or_a_run_folder_to_a_chosen_file(tmp_path):
    search(space=CategoricalSpace(SPACE), strategy="random", evaluator=flaky, budget=3, out=tmp_path,
           run_id="r2", seed=0)
    assert main(["report", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "runs" / "r2" / "report.html").is_file()
    target = tmp_path / "page.html"
    assert main(["report", str(tmp_path / "runs" / "r2"), "--to", str(target)]) == 0
    assert "<h1>nas run r2</h1>" in target.read_text()


def test_report_of_an_unknown_run_is_a_one_line_error(tmp_path, capsys):
    assert main(["report", "nope", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot report run nope: no such run") and len(err.splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def section(page: str, heading: str) -> str:
    """The HTML between ``<h2>heading</h2>`` and the next <h2>."""
    return page.split(f"<h2>{heading}</h2>")[1].split("<h2>")[0]


INLINE_PNG = r'src="data:image/png;base64,[A-Za-z0-9+/=]{200,}"'


def test_report_of_a_run_with_repeats_and_baselines(tmp_path):
    rdir = write_run(tmp_path, "rep")
    assert main(["report", str(rdir.path)]) == 0
    page = (rdir.path / "report.html").read_text()
    winner = section(page, "Winner")
    assert WINNER in winner and "<td>81.0 ± 1.0 (n=3)</td>" in winner
    assert "<td>10</td>" in winner and "3,500,000" in winner  # latency_ms, params
    assert re.search(r"Differences under ~7\.9 points are within noise \(seed-to-seed std 3\.9 from 9 "
                     r"repeats\)", winner)
    assert re.search(r'<img class="arch" alt="the winner&#x27;s architecture" ' + INLINE_PNG, winner)
    assert "1000-class" in winner  # the picture's counts are not the measured 3,500,000
    baselines = section(page, "Baselines")
    assert "<td>efficientnet_b0</td><td>71.0 ± 1.0 (n=3)</td>" in baselines
    assert "<td>resnet18</td><td>66.0 ± 1.0 (n=3)</td>" in baselines
    assert "<td>+10.00 ± 0.82</td>" in baselines and "<td>+15.00 ± 0.82</td>" in baselines
    top = section(page, "Top 10 architectures by mean accuracy")
    first_row = top.split("</tr>")[1]
    assert "★ winner" in first_row and WINNER in first_row and "(n=3)" in first_row
    assert "lucky" in top and "75.7 ± 8.1 (n=3)" in top  # its single draw of 85 is not what counts
    assert "efficientnet_b0" not in top and "mbconv@" not in top  # baselines have their own table
    assert re.search(r"<h3>Accuracy against latency</h3><img alt=\"tradeoff.png\" " + INLINE_PNG, page)
    assert re.search(r"<h3>Progress</h3><img alt=\"progress.png\" " + INLINE_PNG, page)


def test_report_without_best_yaml_computes_the_winner_and_names_baselines_plainly(tmp_path):
    page = render(write_run(tmp_path, "nobest", best=False))
    winner = section(page, "Winner")
    assert WINNER in winner and "81.0 ± 1.0 (n=3)" in winner
    assert "Accuracy: seed-to-seed std 3.9 from 9 repeats." in winner
    baselines = section(page, "Baselines")
    assert "<td>baseline 1</td><td>71.0 ± 1.0 (n=3)</td>" in baselines and "<td>+10</td>" in baselines


def test_report_of_a_space_that_is_no_network_has_no_winner_picture(tmp_path):
    search(space=CategoricalSpace(SPACE), strategy="random", evaluator=flaky, budget=4, out=tmp_path,
           run_id="r3", seed=1)

    page = render(run_folder(tmp_path, "r3"))
    winner = section(page, "Winner")
    assert "(n=1)" in winner and "<img" not in winner
    assert "none (run with baselines=auto" in section(page, "Baselines")


def test_a_pareto_run_against_latency_shows_one_front(tmp_path):
    rdir = write_run(tmp_path, "pareto")
    config = yaml.safe_load(rdir.config.read_text())
    rdir.config.write_text(yaml.safe_dump({**config, "objectives": ["accuracy", "latency_ms:min"]}))
    shutil.copy(rdir.path / "tradeoff.png", rdir.path / "pareto.png")
    page = render(rdir)
    assert "<h3>Accuracy against latency: the Pareto front</h3>" in page
    assert "<h3>Pareto front</h3>" not in page
    assert "<td>81.0 ± 1.0 (n=3)</td><td>10</td>" in section(page, "Winner")  # the count shown once
