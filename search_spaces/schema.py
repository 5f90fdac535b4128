"""YAML search-space files -> validated, frozen specs, with one-line errors naming file and field.

A space file (see ``mbconv.yaml``)::

    name: mbconv
    description: ...
    resolution: {base: 224, multipliers: [0.875, 1.0, 1.15]}   # or 224, or [192, 224]
    width: [0.75, 1.0, 1.25]                                    # channel multipliers
    act: silu
    drop_path: 0.2
    stem: {kernel: 3, stride: 2, channels: 32}
    head: {channels: 1280, dropout: 0.2}
    stages:
      - {block: mb, channels: 24, stride: 2, depth: [1, 2, 3], kernel: [3, 5, 7], expansion: [3, 6]}
      - {channels: 40, stride: 2, depth: 2, blocks: {mb: {kernel: [3, 5]}, convnext: {kernel: 7}}}
      - {channels: 64, stride: 2, depth: 3, granularity: layer, ops: [skip, mb_k3_e3, mb_k5_e6]}

A stage chooses its options once (``granularity: stage``) or per layer (``layer``, as in
Once-for-All). Options are a block type with option lists (``block:`` + lists), several block types
each with its own lists (``blocks:``), or an explicit list of block fragments (``ops:``).
Resolution multipliers give ``base * m`` rounded half-up to a multiple of 8.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from search_spaces import zoo
from search_spaces.arch import (
    ACTIVATIONS,
    BLOCK_KINDS,
    HEAD_KINDS,
    STEM_KINDS,
    Architecture,
    Block,
    Head,
    Stem,
)
from search_spaces.errors import ArchitectureError, SpaceError, describe_choices
from search_spaces.kinds import block_kind

# Options each block type accepts in a space file, with the value used when a file omits it.
BLOCK_OPTIONS: dict[str, dict[str, Any]] = {kind: dict(block_kind(kind).options) for kind in BLOCK_KINDS}
_STAGE_KEYS = ("channels", "stride", "depth", "granularity", "block", "blocks", "ops")
_TOP_KEYS = ("name", "description", "resolution", "width", "act", "drop_path", "stem", "head", "stages",
             "baselines")


@dataclass(frozen=True)
class BlockChoice:
    """One block type and the values each of its options may take (``channels`` may override)."""

    kind: str
    options: tuple[tuple[str, tuple[Any, ...]], ...]
    channels: int | None = None

    def values(self, option: str) -> tuple[Any, ...]:
        return dict(self.options)[option]


@dataclass(frozen=True)
class StageSpec:
    channels: int
    stride: int
    depths: tuple[int, ...]
    granularity: str
    blocks: tuple[BlockChoice, ...] = ()
    ops: tuple[str, ...] = ()


@dataclass(frozen=True)
class SpaceSpec:
    name: str
    description: str
    resolutions: tuple[int, ...]
    widths: tuple[float, ...]
    act: str
    drop_path: float
    stem: dict[str, Any]
    head: dict[str, Any]
    stages: tuple[StageSpec, ...]
    # The resolution multipliers are relative to (the largest listed one when there is no base).
    base_resolution: int = 224
    # Hand-designed references a run compares its winner with (baselines=auto): zoo names or
    # architecture strings.
    baselines: tuple[str, ...] = ()


class _Reader:
    """Validates one file, prefixing every error with the file name and the field path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, message: str) -> SpaceError:
        return SpaceError(f"{self.source}: {path}: {message}" if path else f"{self.source}: {message}")

    def mapping(self, value: Any, path: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> dict:
        if not isinstance(value, dict):
            got = "nothing" if value is None else type(value).__name__  # None: an empty file or field
            raise self.fail(path, f"expected a mapping, got {got}")
        for key in value:
            if key not in allowed:
                raise self.fail(f"{path}.{key}" if path else str(key), describe_choices("key", key, allowed))
        for key in required:
            if key not in value:
                raise self.fail(path, f"missing required field {key!r}")
        return value

    def choices(self, value: Any, path: str, check) -> tuple[Any, ...]:
        """A scalar or a non-empty list, each element passed through ``check``."""
        values = value if isinstance(value, list) else [value]
        if not values:
            raise self.fail(path, "empty choice list; give at least one value")
        out = []
        for v in values:
            problem = check(v)
            if problem:
                raise self.fail(path, f"{v!r} is not allowed ({problem})")
            out.append(v)
        if len(set(map(repr, out))) != len(out):
            raise self.fail(path, f"duplicate values in {out}")
        return tuple(out)


def _positive_int(v: Any) -> str | None:
    return None if isinstance(v, int) and not isinstance(v, bool) and v > 0 else "must be a positive integer"


def _odd_kernel(v: Any) -> str | None:
    ok = isinstance(v, int) and not isinstance(v, bool) and v > 0 and v % 2 == 1
    return None if ok else "kernels must be positive odd integers"


def _positive_number(v: Any) -> str | None:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
    return None if ok else "must be a positive number"


def _se_ratio(v: Any) -> str | None:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1
    return None if ok else "SE ratios must be in [0, 1)"


def _act(v: Any) -> str | None:
    return None if v is None or v in ACTIVATIONS else f"allowed: {', '.join(ACTIVATIONS)}"


def _bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else "must be true or false"


_OPTION_CHECKS = {
    "kernel": _odd_kernel,
    "expansion": _positive_number,
    "se": _se_ratio,
    "se_hard": _bool,
    "act": _act,
    "cardinality": _positive_int,
    "width_per_group": _positive_int,
}


def _block_choice(r: _Reader, kind: Any, options: dict, path: str) -> BlockChoice:
    if kind not in BLOCK_KINDS:
        raise r.fail(path, describe_choices("block type", kind, BLOCK_KINDS))
    allowed = tuple(BLOCK_OPTIONS[kind]) + ("channels",)
    r.mapping(options, path, allowed)
    values = []
    for option, default in BLOCK_OPTIONS[kind].items():
        values.append((option, r.choices(options.get(option, default), f"{path}.{option}", _OPTION_CHECKS[option])))
    channels = options.get("channels")
    if channels is not None and _positive_int(channels):
        raise r.fail(f"{path}.channels", f"{channels!r} must be a positive integer")
    return BlockChoice(kind, tuple(values), channels)


def _stage(r: _Reader, raw: Any, path: str) -> StageSpec:
    kind = raw.get("block") if isinstance(raw, dict) else None
    if kind is not None and kind not in BLOCK_OPTIONS:
        raise r.fail(f"{path}.block", describe_choices("block type", kind, BLOCK_KINDS))
    extra = tuple(BLOCK_OPTIONS[kind]) if kind in BLOCK_OPTIONS else ()
    stage = r.mapping(raw, path, _STAGE_KEYS + extra, required=("channels",))
    forms = [k for k in ("block", "blocks", "ops") if k in stage]
    if len(forms) != 1:
        raise r.fail(path, "give exactly one of 'block', 'blocks' or 'ops'")
    channels = stage["channels"]
    if _positive_int(channels):
        raise r.fail(f"{path}.channels", f"{channels!r} must be a positive integer")
    stride = stage.get("stride", 1)
    if stride not in (1, 2):
        raise r.fail(f"{path}.stride", f"{stride!r} is not allowed; allowed: 1, 2")
    depths = r.choices(stage.get("depth", 1), f"{path}.depth", _positive_int)
    granularity = stage.get("granularity", "stage")
    if granularity not in ("stage", "layer"):
        raise r.fail(f"{path}.granularity", f"{granularity!r} is not allowed; allowed: stage, layer")
    if forms == ["ops"]:
        ops = r.choices(stage["ops"], f"{path}.ops", lambda v: None if isinstance(v, str) else "must be a string")
        for i, op in enumerate(ops):
            try:
                Block.parse(f"{op}_c{channels}")
            except ArchitectureError as exc:
                raise r.fail(f"{path}.ops[{i}]", str(exc)) from None
        return StageSpec(channels, stride, tuple(sorted(depths)), granularity, ops=ops)
    if forms == ["block"]:
        kind = stage["block"]
        options = {k: v for k, v in stage.items() if k not in _STAGE_KEYS}
        blocks = (_block_choice(r, kind, options, path),)
    else:
        raw_blocks = r.mapping(stage["blocks"], f"{path}.blocks", BLOCK_KINDS)
        if not raw_blocks:
            raise r.fail(f"{path}.blocks", "empty; give at least one block type")
        blocks = tuple(
            _block_choice(r, kind, opts or {}, f"{path}.blocks.{kind}") for kind, opts in raw_blocks.items()
        )
    return StageSpec(channels, stride, tuple(sorted(depths)), granularity, blocks=blocks)


def _resolutions(r: _Reader, raw: Any) -> tuple[int, ...]:
    if isinstance(raw, dict):
        r.mapping(raw, "resolution", ("base", "multipliers"), required=("base",))
        base = raw["base"]
        if _positive_int(base):
            raise r.fail("resolution.base", f"{base!r} must be a positive integer")
        mults = r.choices(raw.get("multipliers", 1.0), "resolution.multipliers", _positive_number)
        # Half-up to a multiple of 8, the granularity EfficientNet's resolutions use.
        return tuple(max(8, int(base * m / 8 + 0.5) * 8) for m in mults)
    return r.choices(raw, "resolution", lambda v: _positive_int(v) or (None if v >= 8 else "must be >= 8"))


def parse_space(data: Any, source: str = "<space>") -> SpaceSpec:
    """Validate the loaded YAML of a space; ``source`` names it in errors."""
    r = _Reader(source)
    top = r.mapping(data, "", _TOP_KEYS, required=("name", "stem", "head", "stages"))
    name = top["name"]
    if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
        raise r.fail("name", f"{name!r} must be letters, digits, '_' or '-'")
    act = top.get("act", "relu")
    if act not in ACTIVATIONS:
        raise r.fail("act", describe_choices("activation", act, ACTIVATIONS))
    drop_path = top.get("drop_path", 0.0)
    if _se_ratio(drop_path):
        raise r.fail("drop_path", f"{drop_path!r} must be in [0, 1)")
    stem = dict(r.mapping(top["stem"], "stem", ("kernel", "stride", "channels", "kind", "pool", "act"), ("channels",)))
    if stem.get("kind", "conv") not in STEM_KINDS:
        raise r.fail("stem.kind", describe_choices("stem type", stem.get("kind"), STEM_KINDS))
    head = dict(r.mapping(top["head"], "head", ("kind", "channels", "hidden", "dropout", "act")))
    if head.get("kind", "conv") not in HEAD_KINDS:
        raise r.fail("head.kind", describe_choices("head type", head.get("kind"), HEAD_KINDS))
    for part, cls in (("stem", Stem), ("head", Head)):
        try:
            cls(**(stem if part == "stem" else head))
        except (ArchitectureError, TypeError) as exc:
            raise r.fail(part, str(exc)) from None
    stages = top["stages"]
    if not isinstance(stages, list) or not stages:
        raise r.fail("stages", "must be a non-empty list of stages")
    resolution = top.get("resolution", 224)
    resolutions = _resolutions(r, resolution)
    return SpaceSpec(
        name=name,
        description=str(top.get("description", "")).strip(),
        resolutions=resolutions,
        base_resolution=int(resolution["base"]) if isinstance(resolution, dict) else max(resolutions),
        widths=r.choices(top.get("width", 1.0), "width", _positive_number),
        act=act,
        drop_path=float(drop_path),
        stem=stem,
        head=head,
        stages=tuple(_stage(r, s, f"stages[{i}]") for i, s in enumerate(stages)),
        baselines=_baselines(r, top.get("baselines", [])),
    )


def _baselines(r: _Reader, raw: Any) -> tuple[str, ...]:
    """Reference model names (``nas show`` lists them) or architecture strings."""
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        raise r.fail("baselines", "must be a list of reference names or architecture strings")
    for i, value in enumerate(raw):
        if value in zoo.names():
            continue
        try:
            Architecture.parse(value)
        except ArchitectureError as exc:
            raise r.fail(f"baselines[{i}]", f"{value!r} is neither a reference model "
                         f"({', '.join(zoo.names())}) nor an architecture string ({exc})") from None
    return tuple(raw)


def load_spec(path: str | Path) -> SpaceSpec:
    """Read and validate a space file (safe YAML only)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpaceError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpaceError(f"{path.name}: unreadable YAML{where}: {problem}") from None
    return parse_space(data, path.name)
