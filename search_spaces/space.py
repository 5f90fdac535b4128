"""`SearchSpace`: the API every strategy speaks, and `CategoricalSpace` for plain dict spaces.

A space is described by an ordered list of categorical `Dimension`s. A dimension may be conditional
(``when``): it only exists when earlier dimensions took certain values (the kernel of layer 3 exists
only when the stage has 3 or more layers; the ConvNeXt expansion only when the stage's block is a
ConvNeXt block). Sampling, mutation, crossover, counting and encoding are written once here on top
of ``dimensions()``, ``from_choices()`` and ``to_choices()``; a concrete space supplies those three
(plus ``canonical`` where different choices name the same network).
"""
from __future__ import annotations

import itertools
import json
import math
import random
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from search_spaces.errors import SpaceError

Choices = dict[str, Any]


@dataclass(frozen=True)
class Dimension:
    """One categorical decision; ``when`` lists (earlier dimension, values) that must all hold."""

    name: str
    values: tuple[Any, ...]
    when: tuple[tuple[str, tuple[Any, ...]], ...] = ()

    def active(self, choices: Mapping[str, Any]) -> bool:
        return all(choices.get(parent, _MISSING) in allowed for parent, allowed in self.when)

    @property
    def numeric(self) -> bool:
        return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in self.values)


_MISSING = object()


class SearchSpace(ABC):
    """Base of every space: sample, mutate, cross over, count, encode and canonicalise members."""

    name: str = "space"
    description: str = ""

    # -- what a concrete space provides --------------------------------------------------------
    @abstractmethod
    def dimensions(self) -> tuple[Dimension, ...]:
        """The ordered categorical dimensions; conditions refer only to earlier dimensions."""

    @abstractmethod
    def from_choices(self, choices: Mapping[str, Any]) -> Any:
        """The member named by a full assignment of the active dimensions."""

    @abstractmethod
    def to_choices(self, arch: Any) -> Choices:
        """The assignment of active dimensions naming ``arch``; SpaceError if it is not a member."""

    def canonical(self, arch: Any) -> Any:
        """One representative for every group of members that are the same network."""
        return arch

    def to_string(self, arch: Any) -> str:
        return str(arch)

    def forget_memos(self) -> None:
        """Drop memoised conversions (keys, choices), so that converting can be timed cold."""

    def from_string(self, text: str) -> Any:
        raise NotImplementedError

    # -- derived API ---------------------------------------------------------------------------
    @cached_property
    def _dims(self) -> tuple[Dimension, ...]:
        dims = tuple(self.dimensions())
        seen: set[str] = set()
        for dim in dims:
            if not dim.values:
                raise SpaceError(f"space {self.name}: dimension {dim.name!r} has no values")
            for parent, _ in dim.when:
                if parent not in seen:
                    raise SpaceError(
                        f"space {self.name}: dimension {dim.name!r} depends on {parent!r}, "
                        "which is not an earlier dimension"
                    )
            seen.add(dim.name)
        return dims

    def choices(self) -> dict[str, list[Any]]:
        """Flat categorical dimensions (for Optuna, NNI); see ``dimensions()`` for conditions."""
        return {d.name: list(d.values) for d in self._dims}

    def key(self, arch: Any) -> str:
        """The string that identifies a member up to equivalence (used to dedupe and store)."""
        return self.to_string(self.canonical(arch))

    def validate(self, arch: Any) -> Any:
        """Return the canonical member, or raise SpaceError naming what is outside the space."""
        choices = self.to_choices(arch)
        return self.canonical(self.from_choices(choices))

    def complete(self, partial: Mapping[str, Any], rng: random.Random) -> Choices:
        """Fill every active dimension missing from ``partial`` (in order) with a random value."""
        choices: Choices = {}
        for dim in self._dims:
            if not dim.active(choices):
                continue
            value = partial.get(dim.name, _MISSING)
            choices[dim.name] = value if value in dim.values else rng.choice(dim.values)
        return choices

    def sample(self, rng: random.Random) -> Any:
        return self.from_choices(self.complete({}, rng))

    def mutate(self, arch: Any, rng: random.Random) -> Any:
        """Change one active dimension to another value (dimensions it opens are drawn at random)."""
        choices = self.to_choices(arch)
        mutable = [d for d in self._dims if d.active(choices) and len(d.values) > 1]
        if not mutable:
            return arch
        dim = rng.choice(mutable)
        choices[dim.name] = rng.choice([v for v in dim.values if v != choices[dim.name]])
        return self.from_choices(self.complete(choices, rng))

    def crossover(self, a: Any, b: Any, rng: random.Random) -> Any:
        """Uniform crossover: each dimension from either parent (or drawn, if that one lacks it)."""
        ca, cb = self.to_choices(a), self.to_choices(b)
        mixed = {}
        for dim in self._dims:
            source = ca if rng.random() < 0.5 else cb
            if dim.name in source:
                mixed[dim.name] = source[dim.name]
            elif dim.name in ca or dim.name in cb:
                mixed[dim.name] = ca.get(dim.name, cb.get(dim.name))
        return self.from_choices(self.complete(mixed, rng))

    @cached_property
    def size(self) -> int:
        """Exact number of distinct full assignments (members before canonical equivalence)."""
        dims = self._dims
        parents = {p for d in dims for p, _ in d.when}
        # Group dimensions into independent components linked by their conditions.
        group = {d.name: d.name for d in dims}

        def find(x: str) -> str:
            while group[x] != x:
                group[x] = group[group[x]]
                x = group[x]
            return x

        for d in dims:
            for p, _ in d.when:
                group[find(d.name)] = find(p)
        components: dict[str, list[Dimension]] = {}
        for d in dims:
            components.setdefault(find(d.name), []).append(d)
        return math.prod(_count_component(comp, parents) for comp in components.values())

    @cached_property
    def _encoding(self) -> tuple[int, tuple[tuple[str, int, dict[Any, int] | None], ...]]:
        """(vector length, per dimension: name, offset, value -> one-hot position or None if numeric)."""
        slots, offset = [], 0
        for dim in self._dims:
            if dim.numeric:
                slots.append((dim.name, offset, None))
                offset += 1
            else:
                positions = {}
                for i, v in enumerate(dim.values):
                    positions.setdefault(_hashable(v), offset + i)
                slots.append((dim.name, offset, positions))
                offset += len(dim.values)
        return offset, tuple(slots)

    @cached_property
    def _slot_of(self) -> dict[str, tuple[int, dict[Any, int] | None]]:
        return {name: (offset, positions) for name, offset, positions in self._encoding[1]}

    def encode(self, arch: Any) -> list[float]:
        """Fixed-length numeric vector: numeric dimensions by value, others one-hot; 0 if inactive."""
        vector = [0.0] * self._encoding[0]
        for position, value in self._placed(self.to_choices(arch)):
            vector[position] = value
        return vector

    def _placed(self, choices: Choices) -> list[tuple[int, float]]:
        """Where ``choices`` put a non-zero in the encoding, and the value there."""
        placed, slots = [], self._slot_of
        for name, value in choices.items():
            slot = slots.get(name)
            if slot is None:
                continue
            offset, positions = slot
            if positions is None:
                placed.append((offset, float(value)))
            else:
                position = positions.get(_hashable(value))
                if position is not None:
                    placed.append((position, 1.0))
        return placed

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, size={self.size})"


def _count_component(dims: Sequence[Dimension], parents: set[str]) -> int:
    """Count assignments of one component: enumerate its parent dimensions, multiply the leaves."""
    heads = [d for d in dims if d.name in parents]
    leaves = [d for d in dims if d.name not in parents]
    if len(heads) > 12:
        raise SpaceError("space too entangled to count: more than 12 conditioning dimensions")
    seen: set[tuple] = set()
    total = 0
    for values in itertools.product(*(d.values for d in heads)):
        choices: Choices = {}
        for d, v in zip(heads, values):
            if d.active(choices):
                choices[d.name] = v
        signature = tuple(sorted(choices.items(), key=lambda kv: kv[0]))
        if signature in seen:
            continue
        seen.add(signature)
        total += math.prod(len(d.values) for d in leaves if d.active(choices))
    return total


class CategoricalSpace(SearchSpace):
    """A user-defined space whose members are plain dicts: ``CategoricalSpace({"lr": [...], ...})``."""

    def __init__(self, choices: Mapping[str, Sequence[Any]], name: str = "categorical") -> None:
        if not isinstance(choices, Mapping) or not choices:
            raise SpaceError("CategoricalSpace: needs a non-empty mapping of name -> list of values")
        dims = []
        for key, values in choices.items():
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
                raise SpaceError(
                    f"CategoricalSpace: {key!r} must map to a non-empty list of values"
                )
            dims.append(Dimension(str(key), tuple(values)))
        self._dimensions = tuple(dims)
        self.name = name
        self.description = f"{len(dims)} categorical dimensions"

    def dimensions(self) -> tuple[Dimension, ...]:
        return self._dimensions

    def from_choices(self, choices: Mapping[str, Any]) -> dict[str, Any]:
        return self.to_choices(dict(choices))

    def to_choices(self, arch: Any) -> Choices:
        if not isinstance(arch, Mapping):
            raise SpaceError(f"space {self.name}: a member is a dict, got {type(arch).__name__}")
        out: Choices = {}
        for dim in self._dimensions:
            if dim.name not in arch:
                raise SpaceError(f"space {self.name}: missing {dim.name!r}")
            if arch[dim.name] not in dim.values:
                allowed = ", ".join(map(str, dim.values))
                raise SpaceError(
                    f"space {self.name}: {dim.name}={arch[dim.name]!r} is not allowed; "
                    f"allowed: {allowed}"
                )
            out[dim.name] = arch[dim.name]
        extra = set(arch) - set(out)
        if extra:
            raise SpaceError(f"space {self.name}: unknown keys {sorted(extra)}")
        return out

    def to_string(self, arch: Any) -> str:
        return json.dumps(self.to_choices(arch), sort_keys=True)

    def from_string(self, text: str) -> dict[str, Any]:
        return self.to_choices(json.loads(text))


def _hashable(value: Any) -> Any:
    """A dictionary key for a choice value (lists, e.g. YAML sequences, as tuples)."""
    return tuple(value) if isinstance(value, list) else value
