"""``nas scale ARCH phi=N ...``: compound-scale an architecture into a family table and YAML."""
from __future__ import annotations

import argparse
import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from evaluators.base import DEFAULT_DATA
from evaluators.registry import evaluator_options
from nas.archs import resolve_arch
from nas.config import parse_command
from nas.deploy import scale
from nas.progress import task_bar
from search_spaces import zoo
from search_spaces.checks import check_int
from search_spaces.errors import ConfigError, describe_choices

SCALE_HELP = """\
EfficientNet compound scaling: depth x alpha^phi, width x beta^phi, resolution ~ base x gamma^phi.
Channels and layers are rounded as the builder rounds them; the resolution (a multiple of
res_multiple) is, with match_macs=true, the one whose MACs come closest to budget^phi times the
base's (budget=2: the paper's doubling; budget=null: alpha*beta^2*gamma^2), absorbing that rounding.
Writes <out>/families/<name>.yaml.

  nas scale efficientnet_b0 phi=3                     members phi=0..3 (phi=1..3, phi=[0,2] also work)
  nas scale efficientnet_b0 pairs=efficientnet        torchvision's B0..B7 (width, depth, res, dropout)
  nas scale ARCH pairs=[[1.1,1.2,260],[1.2,1.4,300]]  explicit [width, depth[, resolution[, dropout]]]
  nas scale ARCH phi=2 search=true data=digits evaluator.epochs=1
      grid-search alpha, beta, gamma in [grid_min, grid_max] step grid_step with
      |alpha*beta^2*gamma^2 - 2| <= tolerance, each scored at phi=1 by the proxy evaluator
      (109 points with the defaults; points with the same phi=1 network train once)

Keys (defaults): phi=3 pairs=null alpha=1.2 beta=1.1 gamma=1.15 res_multiple=8 match_macs=true
  budget=2 num_classes=1000 out=results name=<reference name, file stem or space-hash> json=false
  search=false grid_min=1.0 grid_max=2.0 grid_step=0.05 tolerance=0.1 seed=0 progress=true
  data=digits data.<option>=V   evaluator.<proxy option>=V (epochs=3, resolution=24, steps, ...)
  latency=auto|none latency.device=cpu latency.threads=1 latency.batch=1 latency.dtype=float32
  latency.channels_last=true latency.runtime=torch latency.warmup=3 latency.repeats=20
  latency.rounds=20 latency.placement=per-round latency.reference=none
  latency.statistic=median latency.profile=DIR
  latency.num_classes=<num_classes>
latency_ms is predicted from the device profile's table only when a profile exists (nas latency
profile); parts a scaled member adds are timed into that profile when it is this machine's.
"""

LATENCY_DEFAULTS: dict[str, Any] = {
    "name": "auto", "device": "cpu", "threads": 1, "batch": 1, "dtype": "float32", "channels_last": True,
    "runtime": "torch", "warmup": 3, "repeats": 20, "rounds": 20, "placement": "per-round", "reference": "none",
    "statistic": "median", "profile": None, "num_classes": None,
}
LATENCY_MODES = ("auto", "none")


def scale_defaults() -> dict[str, Any]:
    """Every key of ``nas scale`` with its default; the proxy evaluator's options under ``evaluator``."""
    options, _, _ = evaluator_options("proxy")
    return {
        "phi": None, "pairs": None, "alpha": 1.2, "beta": 1.1, "gamma": 1.15,
        "res_multiple": 8, "match_macs": True, "budget": 2.0, "num_classes": 1000, "out": "results", "name": None,
        "search": False, "grid_min": 1.0, "grid_max": 2.0, "grid_step": 0.05, "tolerance": 0.1, "seed": 0,
        "data": dict(DEFAULT_DATA),
        # The seed is the top-level key, so it is not also an evaluator option.
        "evaluator": {o.name: o.default for o in options if o.name != "seed"},
        "latency": dict(LATENCY_DEFAULTS), "json": False, "progress": True,
    }


def _only_proxy(items: Sequence[str]) -> list[str]:
    """The settings without ``evaluator=proxy`` (the only evaluator ``nas scale`` searches with)."""
    kept = []
    for item in items:
        key, sep, value = item.partition("=")
        if sep and key == "evaluator":
            if value.strip() != "proxy":
                raise ConfigError(f"evaluator: nas scale searches with the proxy evaluator only, got {value!r}")
            continue
        kept.append(item)
    return kept


def parse_phis(value: Any) -> list[float]:
    """``3`` -> 0..3, ``"1..3"`` -> 1..3, ``[0, 2.5]`` as given."""
    def number(v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise ConfigError(f"phi: must be a number >= 0, a range A..B or a list, got {v!r}")
        return int(v) if float(v).is_integer() else float(v)

    if value is None:
        value = 3
    if isinstance(value, (list, tuple)):
        phis = [number(v) for v in value]
        if not phis:
            raise ConfigError("phi: the list is empty; give e.g. phi=[0,1,2]")
        return list(dict.fromkeys(phis))
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+)\s*\.\.\s*(\d+)\s*", value)
        if not match or int(match[1]) > int(match[2]):
            raise ConfigError(f"phi: must be N (0..N), a range A..B with A <= B, or a list [..], got {value!r}")
        return list(range(int(match[1]), int(match[2]) + 1))
    top = number(value)
    # A fractional N still starts at the base: phi=2.5 is 0, 1, 2, 2.5.
    return [*range(int(top) + 1), *([] if float(top).is_integer() else [top])]


def default_name(text: str) -> str:
    """The family's file name: the reference model's name, the arch file's stem, or space-hash."""
    if text in zoo.names():
        return text
    if ":" not in text and Path(text).is_file():
        name = Path(text).stem
    else:
        space = text.partition("@")[0]
        name = f"{space}-{hashlib.blake2b(text.strip().encode(), digest_size=4).hexdigest()}"
    return re.sub(r"[^A-Za-z0-9_.\-]+", "-", name).strip("-.") or "family"


def _check(cfg: dict[str, Any]) -> None:
    for key in ("num_classes", "res_multiple"):
        check_int(key, cfg[key], 1)
    if cfg["latency"]["name"] not in LATENCY_MODES:
        raise ConfigError(describe_choices("latency", cfg["latency"]["name"], LATENCY_MODES))
    name = cfg["name"]
    if name is not None and not re.fullmatch(r"[A-Za-z0-9_.\-]+", str(name)):
        raise ConfigError(f"name: may use letters, digits, '_', '.', '-', got {name!r}")
    if cfg["pairs"] is not None:
        if cfg["phi"] is not None:
            raise ConfigError("pairs: give phi or pairs, not both")
        if cfg["search"]:
            raise ConfigError("search: searches compound coefficients; it does not apply to explicit pairs")


def parse_config(overrides: Sequence[str]) -> dict[str, Any]:
    """The checked ``nas scale`` settings as plain values; ConfigError on any bad key or value."""
    cfg = parse_command(_only_proxy(overrides), scale_defaults(), groups=("data", "latency"), open_keys=("data",),
                        max_positional=0, what="scale").settings
    _check(cfg)
    # Built here only to check them: every value error surfaces before anything is trained or written.
    scale.ScaleCoefficients(cfg["alpha"], cfg["beta"], cfg["gamma"])
    scale.ResolutionRule(cfg["res_multiple"], cfg["match_macs"], cfg["budget"])
    grid = scale.Grid(cfg["grid_min"], cfg["grid_max"], cfg["grid_step"], cfg["tolerance"])
    if cfg["search"]:
        grid.points()
    if cfg["pairs"] is not None and cfg["pairs"] != "efficientnet":
        if isinstance(cfg["pairs"], str):
            raise ConfigError(f"pairs: a list like [[1.1,1.2,260]] or 'efficientnet', got {cfg['pairs']!r}")
        scale.check_pairs(cfg["pairs"])
    if cfg["pairs"] is None:
        cfg["phi"] = parse_phis(cfg["phi"])
    return cfg


def build_family(text: str, cfg: dict[str, Any], on_point: Any = None) -> Any:
    """The family ``nas scale ARCH`` describes under ``cfg`` (from ``parse_config``); nothing written."""
    from evaluators.latency.source import latency_settings  # noqa: PLC0415 - torch

    base, _ = resolve_arch(text)
    name = str(cfg["name"]) if cfg["name"] is not None else default_name(text)
    options = cfg["latency"]
    latency = None
    if options["name"] != "none":
        settings = latency_settings(options)
        latency = scale.member_latency(settings, options["num_classes"] or cfg["num_classes"], cfg["out"],
                                       options["profile"])
    coefficients = scale.ScaleCoefficients(cfg["alpha"], cfg["beta"], cfg["gamma"])
    rule = scale.ResolutionRule(cfg["res_multiple"], cfg["match_macs"], cfg["budget"])
    if cfg["pairs"] is not None:
        labels, pairs = scale.efficientnet_pairs() if cfg["pairs"] == "efficientnet" else (None, cfg["pairs"])
        return scale.pairs_family(base, pairs, labels, cfg["num_classes"], name, latency)
    result = None
    if cfg["search"]:
        grid = scale.Grid(cfg["grid_min"], cfg["grid_max"], cfg["grid_step"], cfg["tolerance"])
        options = {"seed": cfg["seed"], **cfg["evaluator"]}
        evaluate = scale.proxy_evaluator(base, cfg["data"], **options)
        result = scale.search_coefficients(base, evaluate, grid, rule, cfg["num_classes"], "proxy",
                                           {"data": cfg["data"], **options}, on_point)
        coefficients = result.best
    return scale.compound_family(base, cfg["phi"], coefficients, rule, cfg["num_classes"], name, latency, result)


def _number(value: float) -> str:
    return f"{value:g}"


def _family_table(family: Any) -> Table:
    """Members and their costs, narrow enough for 80 columns; the arch strings follow it, whole."""
    base_macs = family.base_cost.macs
    if family.coefficients is not None:
        c = family.coefficients
        title = f"{family.name}: alpha={_number(c.alpha)} beta={_number(c.beta)} gamma={_number(c.gamma)}"
        caption = f"alpha*beta^2*gamma^2 = {c.product:.3f}; x MACs: relative to the base"
    else:
        title, caption = f"{family.name}: explicit multipliers", "x MACs: relative to the base"
    table = Table(title=Text(title), caption=caption, box=box.SIMPLE_HEAD)
    with_latency = any(m.latency_ms is not None for m in family.members)
    columns = ["member", "width", "depth", "res", "params", "MMACs", "x MACs"]
    columns += ["latency_ms"] if with_latency else []
    for column in columns:
        table.add_column(column, justify="left" if column == "member" else "right", no_wrap=True)
    for m in family.members:
        row = [m.label, _number(m.width), _number(m.depth), str(m.resolution), f"{m.params:,}",
               f"{m.macs / 1e6:,.1f}", f"{m.macs / base_macs:.2f}"]
        row += [f"{m.latency_ms:.3f}" if m.latency_ms is not None else ""] if with_latency else []
        table.add_row(*(Text(cell) for cell in row))
    return table


def _search_table(result: Any, top: int = 5) -> Table:
    ranked = sorted(result.points, key=lambda p: (-p.accuracy if p.accuracy == p.accuracy else 1e9, p.macs))
    table = Table(title=Text(f"coefficient search: top {min(top, len(ranked))} of {len(ranked)} grid points "
                             f"(phi=1 members, proxy accuracy %)"), box=box.SIMPLE_HEAD)
    for column in ("alpha", "beta", "gamma", "product", "res", "MMACs", "accuracy"):
        table.add_column(column, justify="right", no_wrap=True)
    for p in ranked[:top]:
        table.add_row(_number(p.alpha), _number(p.beta), _number(p.gamma), f"{p.product:.3f}", str(p.resolution),
                      f"{p.macs / 1e6:,.1f}", f"{p.accuracy:.2f}")
    return table


def cmd_scale(args: argparse.Namespace, console: Console, err_console: Console) -> int:
    cfg = parse_config(args.overrides)
    bar, task = None, None
    if cfg["search"] and cfg["progress"]:
        bar = task_bar(err_console)

    def on_point(done: int, total: int, point: Any) -> None:
        nonlocal task
        if bar is None:
            return
        if task is None:
            bar.start()
            task = bar.add_task("grid points", total=total)
        bar.update(task, completed=done)

    try:
        family = build_family(args.arch, cfg, on_point)
    finally:
        if bar is not None:
            bar.stop()
    path = scale.write_family(family, cfg["out"])
    if cfg["json"]:
        print(json.dumps({**family.to_dict(), "path": str(path)}))
        return 0
    if family.search is not None:
        console.print(_search_table(family.search))
        best = family.search.best_point
        console.print(Text(f"best: alpha={_number(best.alpha)} beta={_number(best.beta)} gamma={_number(best.gamma)} "
                           f"({best.accuracy:.2f}% at phi=1)"), soft_wrap=True)
    console.print(_family_table(family))
    for m in family.members:
        console.print(Text(f"{m.label}  {m.arch}"), soft_wrap=True)
    if family.latency_profile is None and cfg["latency"]["name"] != "none":
        console.print(Text("latency_ms: no profile for these settings (nas latency profile makes one)"),
                      soft_wrap=True)
    console.print(Text(f"family: {path}"), soft_wrap=True)
    return 0


def add_parser(sub: Any, run: Any) -> None:
    """Register ``nas scale`` on the subcommand parsers ``sub``."""
    p = sub.add_parser("scale", help="compound-scale an architecture into a family: nas scale ARCH phi=3 ...",
                       description=SCALE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("arch", help="reference model name, architecture string, or path to an arch file")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="settings (see above)")
    p.set_defaults(func=run)


__all__ = ["add_parser", "build_family", "cmd_scale", "parse_config"]
