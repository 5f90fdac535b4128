"""``nas run key=value ...`` -> a checked run config (a plain dict) and the keys the user gave.

Group keys are rewritten before OmegaConf sees them: ``strategy=optuna`` is ``strategy.name=optuna``,
and a bare key that is an option of the chosen strategy (``sampler=tpe``) is
``strategy.sampler=tpe``. The defaults are then extended with the chosen strategy's and evaluator's
own options, so their names are checked (close matches on typos) and their values typed by the
defaults, by the same strict ``parse_overrides`` as every other key.
"""
from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from evaluators.registry import evaluator_options
from nas.config import flat_keys, parse_overrides
from nas.run.folder import RunDir, find_run, saved_config
from nas.run.settings import OPEN_GROUPS, named_groups, run_defaults
from nas.strategies import STRATEGIES
from search_spaces.checks import is_file
from search_spaces.errors import ConfigError, unknown


def strategy_option_defaults(name: str) -> dict[str, Any]:
    if name not in STRATEGIES:
        raise unknown("strategy", name, sorted(STRATEGIES))
    return {opt: default for opt, default, _ in STRATEGIES[name].options()}


def evaluator_option_defaults(name: str) -> tuple[dict[str, Any], bool]:
    """(option -> default, open) of a registered evaluator."""
    options, _, open_ = evaluator_options(name)
    return {o.name: o.default for o in options}, open_


def _split(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"expected key=value, got {item!r}")
    return key.strip(), value


def _unknown_key(key: str, known: set[str], strategy_opts: dict[str, Any], strategy: str) -> ConfigError:
    owners = sorted(n for n, cls in STRATEGIES.items() if key in {o for o, _, _ in cls.options()})
    if owners and "." not in key:
        mine = ", ".join(strategy_opts) or "none"
        return ConfigError(
            f"{key} is an option of strategy {' and '.join(owners)}, not of {strategy} "
            f"(its options: {mine}); choose it with strategy={owners[0]}"
        )
    # Close matches among every spelling, bare strategy options included.
    close = difflib.get_close_matches(key, sorted(known | set(strategy_opts)), n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    allowed = sorted(known)
    return ConfigError(f"unknown key {key!r}{hint}; allowed: {', '.join(allowed)}")


def _merge_saved(saved: dict[str, Any]) -> dict[str, Any]:
    """The defaults with a saved run config over them (unknown saved keys are ignored)."""
    base = run_defaults()
    for key, value in saved.items():
        if key in named_groups():
            if isinstance(value, dict) and value.get("name"):
                base[key] = dict(value)
        elif key in base:
            base[key] = value
    return base


def _saved_base(pairs: Sequence[tuple[str, str]]) -> dict[str, Any] | None:
    """The defaults to start from when the command names a saved config.

    ``resume=true``: the config of the run to resume, so its strategy's and evaluator's options
    are the known keys (and changing them is caught). ``config=FILE``: a run's config.yaml, to
    run those settings again as a new run.
    """
    head = {k: v for k, v in pairs if k in ("resume", "run_id", "out", "config")}
    if head.get("config", "").strip():
        path = Path(head["config"].strip())
        if not is_file(path):
            raise ConfigError(f"config: {path} does not exist")
        base = _merge_saved(saved_config(RunDir(path.parent), path))
        base["run_id"], base["resume"] = None, False
        return base
    if not head.get("resume"):
        return None
    try:
        values = OmegaConf.to_container(OmegaConf.from_dotlist([f"{k}={v}" for k, v in head.items()]))
    except (OmegaConfBaseException, yaml.YAMLError):
        return None  # parse_overrides reports the bad value
    if values.get("resume") is not True:
        return None
    run_id = head.get("run_id", "").strip() or None
    return _merge_saved(saved_config(find_run(values.get("out") or run_defaults()["out"], run_id)))


def config_from_overrides(items: Sequence[str]) -> tuple[dict[str, Any], set[str]]:
    """(config, explicit keys) for ``nas run``; ConfigError/UnknownNameError on any bad input."""
    pairs = [_split(item) for item in items]
    defaults = _saved_base(pairs) or run_defaults()
    # config.yaml says max_latency_ms=baseline only where the bound applied (else null): a new run
    # of those settings applies it again, as if typed, and times the baseline afresh.
    rerun = any(k == "config" and v.strip() for k, v in pairs) and defaults.get("max_latency_ms") == "baseline"
    pairs = [(k, v) for k, v in pairs if k != "config"]
    groups = named_groups()
    chosen = {g: defaults[g]["name"] for g in groups}
    rewritten: list[tuple[str, str]] = []
    for key, value in pairs:
        if key in groups:
            key = f"{key}.name"
        if key.endswith(".name") and key.partition(".")[0] in groups:
            chosen[key.partition(".")[0]] = value.strip()
        rewritten.append((key, value))

    if str(chosen["evaluator"]).startswith("python:"):
        raise ConfigError(
            f"this run was made in Python with the callable evaluator {chosen['evaluator'][7:]}: "
            "resume it with nas.search(..., resume=True)"
        )
    strategy_opts = strategy_option_defaults(chosen["strategy"])
    evaluator_opts, evaluator_open = evaluator_option_defaults(chosen["evaluator"])
    # Saved values (config=FILE, resume) win over the options' own defaults.
    for group, opts in (("strategy", strategy_opts), ("evaluator", evaluator_opts)):
        defaults[group] = {"name": defaults[group]["name"], **opts, **defaults[group]}

    known = set(flat_keys(defaults))
    final: list[str] = []
    explicit: set[str] = set()
    for key, value in rewritten:
        head, _, rest = key.partition(".")
        if rest and head == chosen["evaluator"] and head not in groups and key not in known:
            key = f"evaluator.{rest}"  # supernet.ckpt=PATH: an option of the chosen evaluator
        if key not in known and key in strategy_opts:
            key = f"strategy.{key}"  # bare strategy option: population=50
        head = key.partition(".")[0]
        open_ = head in OPEN_GROUPS or (head == "evaluator" and evaluator_open)
        if key not in known and not (open_ and "." in key):
            raise _unknown_key(key, known, strategy_opts, chosen["strategy"])
        explicit.add(key)
        final.append(f"{key}={value}")
    # baselines is a name (auto, none) or a list of names: typed by the run's checks, not the default.
    given_baselines = defaults["baselines"]
    defaults["baselines"] = None
    if rerun:
        explicit.add("max_latency_ms")
    cfg = parse_overrides(final, defaults, open_keys=OPEN_GROUPS + (("evaluator",) if evaluator_open else ()))
    config = OmegaConf.to_container(cfg, resolve=True)
    if "baselines" not in explicit:
        config["baselines"] = given_baselines
    # Names are text even when they look like numbers (run_id=007 must stay "007").
    for key, value in rewritten:
        if key == "run_id" and value.strip() not in ("", "null", "None"):
            config["run_id"] = value.strip()
        if key in (f"{g}.name" for g in groups) or key == "space":
            head = key.partition(".")[0]
            if key == "space":
                config["space"] = value.strip()
            else:
                config[head]["name"] = value.strip()
    return config, explicit
