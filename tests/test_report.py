"""nas report: one self-contained HTML page per run, read back from the run's files."""
from __future__ import annotations

import re

from nas.api import search
from nas.cli import main
from search_spaces.space import CategoricalSpace

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
    top = page.split("<h2>Top 10 by accuracy</h2>")[1].split("<h2>")[0]
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
