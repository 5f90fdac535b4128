"""Pareto ranking, the one implementation: non-dominated fronts and NSGA-II crowding distance.

Evolution ranks its population by it; a run's Pareto set (``nas.run.problem.pareto_rows``) is its
first front. Every point is "larger is better" in every coordinate (objectives already signed).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def nondominated_ranks(points: Sequence[tuple[float, ...]]) -> list[int]:
    """Front index (0 = non-dominated) of each point; larger is better in every coordinate."""
    if not points:
        return []
    p = np.asarray(points, dtype=float)
    # dominates[i, j]: i is at least as good everywhere and better somewhere.
    dominates = (p[:, None, :] >= p[None, :, :]).all(-1) & (p[:, None, :] > p[None, :, :]).any(-1)
    remaining = dominates.sum(0)  # how many points dominate each one
    ranks = np.full(len(p), -1)
    rank = 0
    front = np.flatnonzero(remaining == 0)
    while front.size:
        ranks[front] = rank
        remaining = remaining - dominates[front].sum(0)
        remaining[ranks >= 0] = -1
        front = np.flatnonzero(remaining == 0)
        rank += 1
    return ranks.tolist()


def crowding(points: Sequence[tuple[float, ...]], ranks: Sequence[int]) -> list[float]:
    """NSGA-II crowding distance within each front (boundary points get infinity)."""
    if not points:
        return []
    p = np.asarray(points, dtype=float)
    r = np.asarray(ranks)
    dist = np.zeros(len(p))
    for rank in np.unique(r):
        members = np.flatnonzero(r == rank)
        for m in range(p.shape[1]):
            order = members[np.argsort(p[members, m], kind="stable")]
            values = p[order, m]
            span = values[-1] - values[0]
            dist[order[0]] = dist[order[-1]] = math.inf
            if span > 0 and len(order) > 2:
                dist[order[1:-1]] += (values[2:] - values[:-2]) / span
    return dist.tolist()


def pareto_mask(points: Sequence[tuple[float, ...]] | np.ndarray) -> np.ndarray:
    """Whether each point is on the first front (no other point dominates it)."""
    return np.asarray(nondominated_ranks([tuple(p) for p in np.asarray(points, dtype=float)]), dtype=int) == 0
