"""Profiling a space on this machine: time every reachable part, then whole networks to calibrate.

Everything measured is appended to the profile store as it is measured, so a profile that is
interrupted resumes with what is missing and a finished one is never measured again.
"""
from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from itertools import chain

import numpy as np
import torch

from evaluators.latency.measure import Measurer
from evaluators.latency.parts import keyed_parts, part_module
from evaluators.latency.store import ProfileStore
from evaluators.latency.table import Calibration, LatencyTable, fit_table_calibration
from search_spaces.arch import Architecture
from search_spaces.errors import ConfigError
from search_spaces.macro import MacroSpace
from search_spaces.reachable import reachable_parts
from search_spaces.space import SearchSpace

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]  # (done, total)
# Parts (networks) measured together, interleaved, and then appended to the store: enough that a
# part's runs spread over seconds, few enough that the modules fit in memory.
PART_CHUNK = 128
NETWORK_CHUNK = 8


def _macro(space: SearchSpace) -> MacroSpace:
    if not isinstance(space, MacroSpace):
        raise ConfigError(f"latency tables are built for YAML spaces; {space.name} is a {type(space).__name__}")
    return space


def space_parts(space: SearchSpace, num_classes: int) -> dict[str, object]:
    """``{key: part}`` of every stem, layer and head the space's members can contain."""
    parts = reachable_parts(_macro(space))
    return keyed_parts(chain(parts.stems, parts.layers, parts.heads), num_classes)


def profile_parts(space: SearchSpace, measurer: Measurer, store: ProfileStore, num_classes: int = 1000,
                  progress: Progress | None = None) -> LatencyTable:
    """Measure every part of ``space`` the store does not hold yet; the resulting table."""
    parts = space_parts(space, num_classes)
    done = store.parts()
    todo = [k for k in parts if k not in done]
    log.info("latency profile %s: %d parts, %d to measure", store.fingerprint.slug, len(parts), len(todo))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for start in range(0, len(todo), PART_CHUNK):
            keys = todo[start:start + PART_CHUNK]
            items = [part_module(parts[k], num_classes) for k in keys]  # type: ignore[arg-type]
            store.add_parts(dict(zip(keys, measurer.measure_many(items))))
            if progress is not None:
                progress(len(parts) - len(todo) + start + len(keys), len(parts))
    if progress is not None and not todo:
        progress(len(parts), len(parts))
    return store.table()


def sample_distinct(space: SearchSpace, n: int, seed: int, exclude: set[str] = frozenset()) -> list[Architecture]:
    """``n`` distinct seeded-random members whose keys are not in ``exclude``."""
    rng, out, keys = random.Random(seed), [], set(exclude)
    for _ in range(100 * n + 1000):
        if len(out) == n:
            break
        arch = space.sample(rng)
        key = space.key(arch)
        if key not in keys:
            keys.add(key)
            out.append(arch)
    return out


def measure_networks(space: SearchSpace, archs: Sequence[Architecture], measurer: Measurer, store: ProfileStore,
                     role: str, num_classes: int = 1000, progress: Progress | None = None) -> list[float]:
    """Median latency of each network, measured unless the store has it for ``role`` already."""
    known = store.networks(space.name, role)
    have = dict(zip(zip(known["arch"], known["num_classes"]), known["latency_ms"]))
    todo = [a for a in dict.fromkeys(archs) if (str(a), num_classes) not in have]
    for start in range(0, len(todo), NETWORK_CHUNK):
        chunk = todo[start:start + NETWORK_CHUNK]
        for arch, m in zip(chunk, measurer.networks(chunk, num_classes)):
            store.add_network(space.name, role, str(arch), num_classes, m)
            have[(str(arch), num_classes)] = m.latency_ms
        if progress is not None:
            progress(len(archs) - len(todo) + start + len(chunk), len(archs))
    return [float(have[(str(a), num_classes)]) for a in archs]


def calibrate(space: SearchSpace, store: ProfileStore, num_classes: int = 1000) -> Calibration:
    """Fit and save the table's calibration on every network measured for this space."""
    nets = store.networks(space.name)
    nets = nets[nets["num_classes"] == num_classes]
    table = LatencyTable(store.fingerprint, store.parts())
    archs = [Architecture.parse(a) for a in nets["arch"]]
    kind_sums = [table.kind_sums(a, num_classes) for a in archs]
    sums = [sum(k.values()) for k in kind_sums]
    calibration = fit_table_calibration(sums, nets["latency_ms"].astype(float).to_numpy(), kind_sums)
    store.save_calibration(calibration)
    ratio = np.median(np.asarray(nets["latency_ms"], float) / np.asarray(sums))
    log.info("calibration %s (median measured/sum %.3f)", calibration.describe(), ratio)
    return calibration
