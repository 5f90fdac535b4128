"""`MacroSpace`: a search space of Architectures defined by a YAML spec (see schema.py).

Dimensions are named after where they act: ``resolution``, ``width``, ``s2.depth``,
``s2.kernel`` (a stage-wide choice), ``s2.l1.kernel`` (layer 1 of stage 2, when layers choose),
``s2.block`` and ``s2.mb.kernel`` (when a stage chooses among block types), ``s2.l1.op`` (explicit
op lists). Stages and layers count from 1 and 0 respectively in names (``s1.l0`` is the first layer
of the first stage). Options with a single value are fixed, not dimensions. A layer's dimensions
exist only when the stage is deep enough to have that layer.
"""
from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from search_spaces.arch import Architecture, Block, Head, Stem
from search_spaces.errors import NasError, SpaceError
from search_spaces.schema import BlockChoice, SpaceSpec, StageSpec
from search_spaces.space import Choices, Dimension, SearchSpace

When = tuple[tuple[str, tuple[Any, ...]], ...]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=1e-9)
    return a == b


class MacroSpace(SearchSpace):
    """Architectures built from a stem, a list of stage specs and a head."""

    def __init__(self, spec: SpaceSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.description = spec.description
        self.baselines = spec.baselines  # reference names or arch strings (baselines=auto)
        self._stem = Stem(**spec.stem)
        self._head = Head(**spec.head)
        self._blocks: dict[tuple, Block] = {}  # (stage, stride, choices) -> block
        self._choices_of: dict[tuple[int, tuple], tuple[tuple[str, Any], ...]] = {}
        self._keys: dict[Architecture, str] = {}
        self._stage_choices: dict[tuple[int, tuple[Block, ...]], tuple[Choices, list[tuple[int, float]]]] = {}

    @property
    def base_resolution(self) -> int:
        """The input resolution the space's multipliers are relative to (e.g. 224)."""
        return self.spec.base_resolution

    # -- dimensions ----------------------------------------------------------------------------
    def _units(self, i: int, stage: StageSpec) -> list[tuple[str, When]]:
        """The (prefix, condition) of each choosing unit of stage i: the stage, or each layer."""
        if stage.granularity == "stage":
            return [(f"s{i + 1}", ())]
        units = []
        for j in range(max(stage.depths)):
            deeper = tuple(d for d in stage.depths if d > j)
            when: When = ((f"s{i + 1}.depth", deeper),) if len(deeper) < len(stage.depths) else ()
            units.append((f"s{i + 1}.l{j}", when))
        return units

    def _unit_dims(self, unit: str, stage: StageSpec, when: When) -> list[Dimension]:
        if stage.ops:
            return [Dimension(f"{unit}.op", stage.ops, when)] if len(stage.ops) > 1 else []
        dims = []
        multi = len(stage.blocks) > 1
        if multi:
            dims.append(Dimension(f"{unit}.block", tuple(b.kind for b in stage.blocks), when))
        for b in stage.blocks:
            cond = when + (((f"{unit}.block", (b.kind,)),) if multi else ())
            for option, values in b.options:
                if len(values) > 1:
                    dims.append(Dimension(self._option_name(unit, b, option, multi), values, cond))
        return dims

    @staticmethod
    def _option_name(unit: str, block: BlockChoice, option: str, multi: bool) -> str:
        return f"{unit}.{block.kind}.{option}" if multi else f"{unit}.{option}"

    def dimensions(self) -> tuple[Dimension, ...]:
        dims = []
        if len(self.spec.resolutions) > 1:
            dims.append(Dimension("resolution", self.spec.resolutions))
        if len(self.spec.widths) > 1:
            dims.append(Dimension("width", self.spec.widths))
        for i, stage in enumerate(self.spec.stages):
            if len(stage.depths) > 1:
                dims.append(Dimension(f"s{i + 1}.depth", stage.depths))
            for unit, when in self._units(i, stage):
                dims += self._unit_dims(unit, stage, when)
        return tuple(dims)

    # -- choices -> architecture ---------------------------------------------------------------
    def _pick(self, choices: Mapping[str, Any], name: str, values: tuple[Any, ...]) -> Any:
        if len(values) == 1:
            return values[0]
        if name not in choices:
            raise SpaceError(f"space {self.name}: missing choice {name!r}")
        value = choices[name]
        for v in values:
            if _same(v, value):
                return v
        raise SpaceError(
            f"space {self.name}: {name}={value!r} is not allowed; allowed: {', '.join(map(str, values))}"
        )

    def _unit_block(self, i: int, unit: str, stage: StageSpec, choices: Mapping[str, Any], stride: int = 1) -> Block:
        """The block a unit's choices name (memoised: searches convert thousands of members)."""
        if stage.ops:
            key: tuple = (i, stride, self._pick(choices, f"{unit}.op", stage.ops))
        else:
            multi = len(stage.blocks) > 1
            kind = self._pick(choices, f"{unit}.block", tuple(b.kind for b in stage.blocks))
            chosen = next(b for b in stage.blocks if b.kind == kind)
            key = (i, stride, kind, tuple(
                self._pick(choices, self._option_name(unit, chosen, o, multi), v) for o, v in chosen.options
            ))
        block = self._blocks.get(key)
        if block is None:
            block = self._blocks[key] = self._new_block(stage, key)
        return block

    @staticmethod
    def _new_block(stage: StageSpec, key: tuple) -> Block:
        if stage.ops:
            return replace(Block.parse(f"{key[2]}_c{stage.channels}"), stride=key[1])
        kind, values = key[2], key[3]
        chosen = next(b for b in stage.blocks if b.kind == kind)
        opts = dict(zip((o for o, _ in chosen.options), values))
        groups = opts.pop("cardinality", 1)
        if "width_per_group" in opts:  # torchvision: inner width = out/4 * wpg/64 * cardinality
            opts["expansion"] = groups * opts.pop("width_per_group") / 256
        return Block(kind, chosen.channels or stage.channels, stride=key[1], groups=groups, **opts)

    def unit_candidates(self, i: int) -> list[tuple[str, tuple[Choices, ...]]]:
        """Per choosing unit of stage ``i`` (the stage, or each layer): its name and every
        assignment of its own dimensions, one per distinct block (for supernets)."""
        stage = self.spec.stages[i]
        out = []
        for unit, _ in self._units(i, stage):
            if stage.ops:
                options = [{f"{unit}.op": op} if len(stage.ops) > 1 else {} for op in stage.ops]
            else:
                multi = len(stage.blocks) > 1
                options = []
                for b in stage.blocks:
                    varying = [(o, v) for o, v in b.options if len(v) > 1]
                    for values in itertools.product(*(v for _, v in varying)):
                        choice = {f"{unit}.block": b.kind} if multi else {}
                        choice.update({self._option_name(unit, b, o, multi): x for (o, _), x in zip(varying, values)})
                        options.append(choice)
            seen, distinct = set(), []
            for choice in options:
                block = self.unit_block(i, unit, choice, 1)
                if block not in seen:
                    seen.add(block)
                    distinct.append(choice)
            out.append((unit, tuple(distinct)))
        return out

    def unit_block(self, i: int, unit: str, choices: Mapping[str, Any], stride: int) -> Block:
        """The block that ``choices`` of ``unit`` name in stage ``i``, with ``stride``."""
        return self._unit_block(i, unit, self.spec.stages[i], choices, stride)

    def stage_blocks(self, i: int, stride: int) -> tuple[Block, ...]:
        """Every block a layer of stage ``i`` can be, with ``stride``."""
        stage = self.spec.stages[i]
        if stage.ops:
            keys = [(i, stride, op) for op in stage.ops]
        else:
            keys = [(i, stride, b.kind, values) for b in stage.blocks
                    for values in itertools.product(*(v for _, v in b.options))]
        return tuple(dict.fromkeys(self._new_block(stage, key) for key in keys))

    def from_choices(self, choices: Mapping[str, Any]) -> Architecture:
        stages = []
        for i, stage in enumerate(self.spec.stages):
            depth = self._pick(choices, f"s{i + 1}.depth", stage.depths)
            units = self._units(i, stage)
            layers = []
            for j in range(depth):
                unit = units[0][0] if stage.granularity == "stage" else units[j][0]
                layers.append(self._unit_block(i, unit, stage, choices, stage.stride if j == 0 else 1))
            stages.append(tuple(layers))
        return Architecture(
            stem=self._stem,
            stages=tuple(stages),
            head=self._head,
            resolution=self._pick(choices, "resolution", self.spec.resolutions),
            act=self.spec.act,
            width=self._pick(choices, "width", self.spec.widths),
            drop_path=self.spec.drop_path,
            space=self.name,
        )

    # -- architecture -> choices ---------------------------------------------------------------
    def _not_member(self, where: str, what: str, value: Any, allowed: tuple[Any, ...]) -> SpaceError:
        shown = ", ".join(map(str, allowed))
        return SpaceError(f"arch not in space {self.name}: {where}{what} {value} not in [{shown}]")

    def _unit_choices(self, i: int, unit: str, stage: StageSpec, block: Block, where: str) -> Choices:
        """The choices naming ``block``'s layers in stage i (memoised per layer shape, relative to
        the unit; stride and repeats are checked by the caller)."""
        memo = (i, block.shape_key())
        relative = self._choices_of.get(memo)
        if relative is None:
            relative = self._choices_of[memo] = self._block_choices(i, stage, block, where)
        return {f"{unit}.{suffix}": value for suffix, value in relative}

    def _block_choices(self, i: int, stage: StageSpec, block: Block, where: str) -> tuple[tuple[str, Any], ...]:
        template = replace(block, stride=1, repeats=1)
        if stage.ops:
            for op in stage.ops:
                if Block.parse(f"{op}_c{stage.channels}") == template:
                    return (("op", op),) if len(stage.ops) > 1 else ()
            raise self._not_member(where, "block", block, stage.ops)
        kinds = tuple(b.kind for b in stage.blocks)
        if block.kind not in kinds:
            raise self._not_member(where, "block type", block.kind, kinds)
        chosen = stage.blocks[kinds.index(block.kind)]
        multi = len(kinds) > 1
        found: Choices = {"block": block.kind} if multi else {}
        actual = {
            "kernel": block.kernel, "expansion": block.expansion, "se": block.se,
            "se_hard": block.se_hard, "act": block.act, "cardinality": block.groups,
            "width_per_group": block.expansion * 256 / block.groups,
        }
        for option, values in chosen.options:
            match = [v for v in values if _same(v, actual[option])]
            if not match:
                raise self._not_member(where, option.replace("_", " ") + "", actual[option], values)
            if len(values) > 1:
                found[self._option_name("", chosen, option, multi)[1:]] = match[0]
        if self._unit_block(i, "", stage, {f".{k}": v for k, v in found.items()}) != template:
            raise SpaceError(f"arch not in space {self.name}: {where}block {block} is not expressible here")
        return tuple(found.items())

    def to_choices(self, arch: Any) -> Choices:
        choices = self._fixed_choices(arch)
        for i, blocks in enumerate(arch.stages):
            choices.update(self._stage_memo(i, blocks)[0])
        return choices

    def encode(self, arch: Any) -> list[float]:
        """As ``SearchSpace.encode``, from each stage's memoised placements."""
        vector = [0.0] * self._encoding[0]
        placed = self._placed(self._fixed_choices(arch))
        for i, blocks in enumerate(arch.stages):
            placed += self._stage_memo(i, blocks)[1]
        for position, value in placed:
            vector[position] = value
        return vector

    def _stage_memo(self, i: int, blocks: Sequence[Block]) -> tuple[Choices, list[tuple[int, float]]]:
        """Stage ``i``'s choices and their places in the encoding, memoised: spaces have few distinct
        stages, and encoding thousands of candidates (the learned latency predictor) meets the same
        ones again and again."""
        memo = (i, tuple(blocks))
        found = self._stage_choices.get(memo)
        if found is None:
            if len(self._stage_choices) >= 1 << 16:
                self._stage_choices.clear()
            choices = self._choices_of_stage(i, self.spec.stages[i], blocks)
            found = self._stage_choices[memo] = (choices, self._placed(choices))
        return found

    def _fixed_choices(self, arch: Any) -> Choices:
        """The choices outside the stages (resolution, width); SpaceError if ``arch`` leaves the
        space there or has another number of stages."""
        if not isinstance(arch, Architecture):
            raise SpaceError(f"space {self.name}: expected an Architecture, got {type(arch).__name__}")
        spec = self.spec
        fixed = [
            ("resolution", arch.resolution, spec.resolutions),
            ("width", arch.width, spec.widths),
            ("depth multiplier", arch.depth, (1.0,)),
            ("activation", arch.act, (spec.act,)),
            ("drop_path", arch.drop_path, (spec.drop_path,)),
            ("stem", arch.stem, (self._stem,)),
            ("head", arch.head, (self._head,)),
            ("number of stages", len(arch.stages), (len(spec.stages),)),
        ]
        choices: Choices = {}
        for name, value, allowed in fixed:
            if value in allowed:  # the common case: equal (or the very object), no tolerance needed
                match = [allowed[allowed.index(value)]]
            else:
                match = [v for v in allowed if _same(v, value)]
            if not match:
                raise self._not_member("", name, value, allowed)
            if name in ("resolution", "width") and len(allowed) > 1:
                choices[name] = match[0]
        return choices

    def _choices_of_stage(self, i: int, stage: StageSpec, blocks: Sequence[Block]) -> Choices:
        """The choices naming stage ``i`` of a member made of ``blocks`` (SpaceError if none does)."""
        choices: Choices = {}
        layers = [(b, b.stride if k == 0 else 1) for b in blocks for k in range(b.repeats)]
        if len(layers) not in stage.depths:
            raise self._not_member(f"stage {i + 1} ", "depth", len(layers), stage.depths)
        if len(stage.depths) > 1:
            choices[f"s{i + 1}.depth"] = len(layers)
        units = self._units(i, stage)
        for j, (layer, stride) in enumerate(layers):
            where = f"stage {i + 1} layer {j} "
            expected = stage.stride if j == 0 else 1
            if stride != expected:
                raise self._not_member(where, "stride", stride, (expected,))
            unit = units[0][0] if stage.granularity == "stage" else units[j][0]
            for key, value in self._unit_choices(i, unit, stage, layer, where).items():
                if key in choices and choices[key] != value:
                    raise SpaceError(
                        f"arch not in space {self.name}: stage {i + 1} layers differ, but this "
                        "space makes one choice per stage"
                    )
                choices[key] = value
        return choices

    # -- equivalence and strings ---------------------------------------------------------------
    def forget_memos(self) -> None:
        self._keys.clear()
        self._stage_choices.clear()
        self._choices_of.clear()

    def key(self, arch: Any) -> str:
        # Memoised: a search asks for the key of the same member several times (claim, tell, store).
        if not isinstance(arch, Architecture):
            return super().key(arch)
        key = self._keys.get(arch)
        if key is None:
            if len(self._keys) >= 1 << 16:
                self._keys.clear()
            key = self._keys[arch] = super().key(arch)
        return key

    def canonical(self, arch: Any) -> Architecture:
        """Relabel into this space; shape-preserving identity layers move to the end of a stage."""
        choices = self.to_choices(arch)
        for i, stage in enumerate(self.spec.stages):
            if not (stage.ops and stage.granularity == "layer" and len(stage.ops) > 1):
                continue
            depth = choices.get(f"s{i + 1}.depth", stage.depths[0])
            names = [f"s{i + 1}.l{j}.op" for j in range(1, depth)]  # layer 0 carries the stride
            ops = [choices[n] for n in names]
            is_skip = {op: Block.parse(f"{op}_c{stage.channels}").kind == "skip" for op in stage.ops}
            ordered = [op for op in ops if not is_skip[op]] + [op for op in ops if is_skip[op]]
            choices.update(zip(names, ordered))
        return self.from_choices(choices)

    def to_string(self, arch: Any) -> str:
        return str(arch)

    def from_string(self, text: str) -> Architecture:
        return Architecture.parse(text)

    # -- compact codes for tabular benchmarks --------------------------------------------------
    def code(self, arch: Architecture) -> str:
        """One digit per op dimension (index into its op list), e.g. NAS-Bench-Macro's keys."""
        choices = self.to_choices(arch)
        return "".join(str(d.values.index(choices[d.name])) for d in self._op_dims())

    def from_code(self, code: str) -> Architecture:
        dims = self._op_dims()
        if len(code) != len(dims) or not all(c.isdigit() and int(c) < len(d.values) for c, d in zip(code, dims)):
            raise SpaceError(
                f"space {self.name}: code {code!r} must be {len(dims)} digits, each an op index"
            )
        return self.from_choices({d.name: d.values[int(c)] for c, d in zip(code, dims)})

    def _op_dims(self) -> tuple[Dimension, ...]:
        dims = self._dims
        if not dims or not all(d.name.endswith(".op") and not d.when and len(d.values) <= 10 for d in dims):
            raise SpaceError(f"space {self.name}: digit codes need a space made only of fixed op lists")
        return dims


def extreme_member(space: MacroSpace, measure: Callable[[Architecture], float], largest: bool,
                   rounds: int = 3, seed: int = 0) -> Architecture:
    """The member with the largest (or smallest) ``measure`` (e.g. MACs) by coordinate search
    over the space's dimensions: OFA's largest and smallest subnets, for spaces whose choices
    are not all ordered numbers."""
    sign = 1.0 if largest else -1.0
    choices = dict(space.to_choices(space.sample(random.Random(seed))))
    best = sign * measure(space.from_choices(choices))
    for _ in range(rounds):
        improved = False
        for dim in space.dimensions():
            if not dim.active(choices):
                continue
            for value in dim.values:
                trial = {**choices, dim.name: value}
                try:
                    arch = space.from_choices(trial)
                except NasError:  # a combination the space's rules exclude
                    arch = None
                if arch is None:
                    continue
                score = sign * measure(arch)
                if score > best + 1e-9:
                    best, choices, improved = score, dict(space.to_choices(arch)), True
        if not improved:
            break
    return space.canonical(space.from_choices(choices))
