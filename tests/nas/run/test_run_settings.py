"""The run's settings are declared once (nas/run/settings.py): a field added there is a setting of
``nas run`` and its --help, a keyword of ``nas.search``, a line of config.yaml, and checked on resume."""
from __future__ import annotations

import dataclasses
import inspect

import pytest
import yaml

import nas
import nas.run.api  # search's signature is made from the settings as declared, when it is imported
from nas.cli.commands import main
from nas.run import settings
from nas.run.settings import (
    RunSettings,
    help_text,
    resumable,
    run_defaults,
    search_parameters,
    setting,
)
from search_spaces.errors import ConfigError

SPACE = {"depth": [1, 2, 3], "width": [8, 16, 32]}


def score(arch):
    return {"accuracy": arch["depth"] * 10 + arch["width"] / 8}


@pytest.fixture
def with_note(monkeypatch):
    """RunSettings with one more field, as a developer would add it: one line."""
    extended = dataclasses.make_dataclass(
        "RunSettings", [("note", "str | None", setting(None, "a free note kept with the run's settings"))],
        bases=(RunSettings,), frozen=True)
    extended.__module__ = RunSettings.__module__  # its annotations read the settings module's names
    monkeypatch.setattr(settings, "RunSettings", extended)
    return extended


def test_a_new_field_is_in_the_help_the_api_the_config_and_resume(with_note, tmp_path, capsys):
    assert "note=null" in help_text() and "a free note kept with the run's settings" in help_text()
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "note=null" in capsys.readouterr().out
    assert "note" in [p.name for p in search_parameters()] and run_defaults()["note"] is None

    first = nas.search(nas.CategoricalSpace(SPACE), evaluator=score, budget=3, seed=1, out=tmp_path,
                       run_id="r", note="first try", select="none", baselines="none")
    saved = yaml.safe_load((first.run_dir / "config.yaml").read_text())
    assert saved["note"] == "first try" and first.config["note"] == "first try"

    # Resume keeps it, refuses to change it (it is not resumable), and takes the budget that may change.
    with pytest.raises(ConfigError, match=r"cannot change note .*'first try'.*'second'"):
        nas.search(nas.CategoricalSpace(SPACE), evaluator=score, budget=5, out=tmp_path, run_id="r",
                   resume=True, note="second")
    resumed = nas.search(nas.CategoricalSpace(SPACE), evaluator=score, budget=5, out=tmp_path, run_id="r",
                         resume=True)
    assert resumed.config["note"] == "first try" and len(resumed.trials) == 5


def test_a_new_field_is_a_key_of_nas_run(with_note, tmp_path, capsys):
    args = ["run", "space=nasbench_macro", "evaluator=cost", "budget=2", "select=none", "baselines=none",
            f"out={tmp_path}", "run_id=r", "progress=false"]
    assert main([*args, "note=from the shell"]) == 0
    saved = yaml.safe_load((tmp_path / "runs" / "r" / "config.yaml").read_text())
    assert saved["note"] == "from the shell"
    assert main(["run", "resume=true", "run_id=r", f"out={tmp_path}", "note=changed", "progress=false"]) == 2
    assert "cannot change note" in capsys.readouterr().err
    assert main(["run", "resume=true", "run_id=r", f"out={tmp_path}", "budget=3", "progress=false"]) == 0


def test_nas_search_signature_is_the_settings():
    """Every setting but search's own (space, evaluator, progress) is a keyword with the declared
    default; groups default to None (their declared defaults)."""
    params = inspect.signature(nas.search).parameters
    own = {"space", "evaluator", "evaluator_options", "progress", "strategy_options"}
    declared = {f.name for f in dataclasses.fields(RunSettings)} - {"space", "evaluator", "progress"}
    assert set(params) - own == declared
    defaults = run_defaults()
    for name in declared:
        if name in settings.setting_groups():
            expected = defaults["strategy"]["name"] if name == "strategy" else None
        else:
            expected = defaults[name]
        assert params[name].default == expected, name


def test_help_lists_every_setting_with_its_default():
    text = help_text()
    defaults = run_defaults()
    for f in dataclasses.fields(RunSettings):
        assert f"  {f.metadata.get('shown') or f.name}" in text or f"  {f.name}=" in text, f.name
    for name in ("latency", "select", "ray", "limits"):
        for key in defaults[name]:
            assert f"{name}.{key}=" in text or f"{name}={defaults[name][key]}" in text, f"{name}.{key}"
    assert "limits.max_params=1e9" in text


def test_only_the_declared_settings_may_change_on_resume():
    assert resumable() == {"budget", "budget_hours", "backend", "ray", "out", "run_id", "resume", "progress"}


def test_a_group_keyword_takes_its_own_keys_only(tmp_path):
    with pytest.raises(ConfigError, match=r"ray option .*workerz.*ray\.workers"):
        nas.search(nas.CategoricalSpace(SPACE), evaluator=score, budget=2, out=None, ray={"workerz": 2})
    with pytest.raises(ConfigError, match=r"latency: expected a name or a mapping"):
        nas.search(nas.CategoricalSpace(SPACE), evaluator=score, budget=2, out=None, latency=3)
