"""Tabular landscapes for checking search defaults: stored tables and a synthetic NK-style one.

A landscape is a space, a table ``{key: {"test_acc": [one accuracy per training seed], "mean_acc":
mean}}`` in NAS-Bench-Macro's format, and the function naming a member's key. Its ``evaluator``
turns it into a callable for ``nas.search``: noisy, it reads one stored seed per repeat (repeat
``r`` reads seed ``(offset(seed, key) + r) % nseeds``, as ``evaluators.tabular.NasBenchMacro``
does); clean, the mean, from a function without ``repeat`` so a run never repeats it.

``fashion()`` is the Fashion-MNIST ground truth (``benchmarks/ground_truth.py``) as a landscape: one
categorical choice among its searched members, each with its stored trainings (one per seed) at the
recipe's length. It has no structure a search can climb (the members are seeded samples, spread over
MACs), so it tests what the others cannot: a real task's noise, and how a strategy spends a budget
on a few dozen candidates.

``synthetic()`` builds a landscape of another shape than NAS-Bench-Macro (which is nearly additive
over its layers): 6 dimensions x 5 choices whose mean accuracy is dominated by interactions between
neighbouring dimensions (an NK landscape with K=1 on a ring) plus a few narrow peaks.
"""
from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from search_spaces import load_space
from search_spaces.space import CategoricalSpace, SearchSpace

META = "_meta"  # a table entry holding how the table was made, not a member


class TableError(ValueError):
    """A landscape file that is not in NAS-Bench-Macro's format."""


@dataclass(frozen=True)
class Landscape:
    """A space with a stored mean and per-seed accuracies for every member."""

    name: str
    space: SearchSpace
    table: Mapping[str, Mapping[str, Any]]
    key: Callable[[Any], str]
    member: Callable[[str], Any]  # a table key back to a member
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> float:
        """The highest mean accuracy of any member."""
        return max(float(row["mean_acc"]) for row in self.table.values())

    def mean_acc(self, arch: Any) -> float:
        """The stored mean accuracy of ``arch`` (a member or its string)."""
        if isinstance(arch, str):
            arch = self.space.from_string(arch)
        return float(self.table[self.key(arch)]["mean_acc"])

    def evaluator(self, noisy: bool, seed: int = 0) -> Callable[..., dict[str, float]]:
        """A callable evaluator: one stored seed per repeat (noisy) or the mean (clean)."""
        table, key_of = self.table, self.key
        if not noisy:
            def clean(arch: Any) -> dict[str, float]:
                return {"accuracy": float(table[key_of(arch)]["mean_acc"])}

            return clean

        def noisy_draw(arch: Any, repeat: int = 0) -> dict[str, float]:
            key = key_of(arch)
            runs = table[key]["test_acc"]
            return {"accuracy": float(runs[(offset(seed, key) + repeat) % len(runs)])}

        return noisy_draw


def offset(seed: int, key: str) -> int:
    """Which stored seed repeat 0 reads; the same hash as ``evaluators.tabular``, so a NAS-Bench-Macro
    landscape draws exactly what ``NasBenchMacro(noisy=True, seed=seed)`` does."""
    digest = hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def load_table(path: str | Path) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """(rows, meta) of a table in NAS-Bench-Macro's format; TableError naming a malformed entry."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise TableError(f"{path}: expected an object of member keys")
    meta = data.get(META) or {}
    rows = {k: v for k, v in data.items() if k != META}
    for key, row in rows.items():
        runs = row.get("test_acc") if isinstance(row, dict) else None
        if not isinstance(runs, list) or not runs or "mean_acc" not in row:
            raise TableError(f"{path}: entry {key!r} needs test_acc (a list) and mean_acc")
    if not rows:
        raise TableError(f"{path}: no members")
    return rows, meta


def from_file(name: str, path: str | Path, space: SearchSpace, key: Callable[[Any], str] | None = None,
              member: Callable[[str], Any] | None = None) -> Landscape:
    """A stored landscape; ``key`` maps a member to its table key and ``member`` back (default:
    ``space.key`` and ``space.from_string``)."""
    rows, meta = load_table(path)
    return Landscape(name, space, rows, key or space.key, member or space.from_string, meta)


def nasbench_macro(path: str | Path) -> Landscape:
    """NAS-Bench-Macro, keyed by its 8-digit codes."""
    space = load_space("nasbench_macro")
    return from_file("nasbench_macro", path, space, key=space.code, member=space.from_code)


def digits(path: str | Path, space_file: str | Path | None = None) -> Landscape:
    """The digits landscape written by ``benchmarks/make_digits_landscape.py``."""
    space_file = space_file or Path(__file__).resolve().parent / "data" / "digits_small.yaml"
    return from_file("digits", path, load_space(str(space_file)))


def fashion(table: str | Path | None = None) -> Landscape:
    """The ground truth's members with every seed of its recipe, as one categorical choice; ``meta``
    says how many members the recipe has and whether all of them are in (``complete``)."""
    import ground_truth as gt  # noqa: PLC0415 - beside this file, and it loads torch: only this landscape needs it

    recipe = gt.load_recipe()
    rows = gt.read_table(Path(table) if table else None)
    rows = rows[(rows["role"] == "member") & (rows["recipe"] == gt.recipe_id(recipe))
                & (rows["epochs"] == recipe["recipe"]["epochs"])]
    runs = {name: group.sort_values("seed")["test_accuracy"].astype(float).tolist()
            for name, group in rows.groupby("name")}
    runs = {name: accs for name, accs in sorted(runs.items()) if len(accs) >= len(recipe["seeds"])}
    if len(runs) < 2:
        raise TableError(f"fashion: {len(runs)} members have every seed of the recipe; at least 2 are needed")
    space = CategoricalSpace({"member": list(runs)}, name="fashion_ground_truth")
    table_rows = {space.key({"member": name}): {"test_acc": accs, "mean_acc": float(np.mean(accs))}
                  for name, accs in runs.items()}
    meta = {"members": len(runs), "of": recipe["members"]["count"],
            "complete": len(runs) >= recipe["members"]["count"]}
    return Landscape("fashion", space, table_rows, space.key, space.from_string, meta)


def synthetic(seed: int = 0, dims: int = 6, choices: int = 5, peaks: int = 4,
              seeds: int = 3, noise: float = 0.2) -> Landscape:
    """An NK-style landscape (K=1 on a ring) with ``peaks`` narrow optima and ``seeds`` noisy
    training runs per member."""
    rng = np.random.default_rng(seed)
    names = [f"x{i}" for i in range(dims)]
    space = CategoricalSpace({n: list(range(choices)) for n in names}, name="synthetic_nk")
    grid = np.array(list(itertools.product(range(choices), repeat=dims)))
    # Weak main effects, strong effects of each (dimension, next dimension) pair: no dimension
    # has a best value on its own, which is what makes this unlike NAS-Bench-Macro.
    raw = sum(rng.normal(0, 0.3, choices)[grid[:, i]] for i in range(dims))
    for i in range(dims):
        pair = rng.normal(0, 1.0, (choices, choices))
        raw = raw + pair[grid[:, i], grid[:, (i + 1) % dims]]
    # Narrow peaks: members lifted to just below the best one, their neighbours half as much:
    # isolated local optima that trap a search, while the best member stays on the smooth part.
    top, spread = raw.max(), raw.std()
    for p in rng.choice(len(grid), size=peaks, replace=False):
        lift = top - spread * rng.uniform(0.05, 0.4) - raw[p]
        hamming = (grid != grid[p]).sum(axis=1)
        raw = raw + np.where(hamming == 0, lift, np.where(hamming == 1, lift / 2, 0.0))
    z = (raw - raw.mean()) / raw.std()
    mean = 88.5 + 1.6 * z  # accuracies near 80-95 %, top members a few tenths apart
    sigma = noise * np.exp(rng.normal(0, 0.4, len(grid)))  # seed-to-seed std varies by member
    runs = mean[:, None] + sigma[:, None] * rng.standard_normal((len(grid), seeds))
    table = {
        space.key(dict(zip(names, map(int, member)))): {"test_acc": r.tolist(), "mean_acc": float(r.mean())}
        for member, r in zip(grid, runs)
    }
    return Landscape("synthetic", space, table, space.key, space.from_string,
                     {"generator": f"synthetic(seed={seed})"})


def additive_r2(landscape: Landscape) -> float:
    """Share of the variance of mean accuracy that a model additive over dimensions explains."""
    keys = list(landscape.table)
    dims = landscape.space.choices()
    x = np.zeros((len(keys), sum(len(v) for v in dims.values())))
    for row, k in enumerate(keys):
        choices, column = landscape.space.to_choices(landscape.member(k)), 0
        for name, values in dims.items():  # one-hot per dimension, numeric values included
            if name in choices:
                x[row, column + values.index(choices[name])] = 1.0
            column += len(values)
    y = np.array([float(landscape.table[k]["mean_acc"]) for k in keys])
    x = np.hstack([x, np.ones((len(x), 1))])
    fit, *_ = np.linalg.lstsq(x, y, rcond=None)
    residual = y - x @ fit
    return float(1 - residual.var() / y.var())


def seed_std(landscape: Landscape) -> float:
    """Pooled seed-to-seed standard deviation of the stored runs."""
    variances = [np.var(row["test_acc"], ddof=1) for row in landscape.table.values() if len(row["test_acc"]) > 1]
    return float(np.sqrt(np.mean(variances)))
