"""Seeded random architectures covering every block kind, for builder and cost tests."""
from __future__ import annotations

import random

from search_spaces.arch import ACTIVATIONS, BLOCK_KINDS, Architecture, Block, Head, Stem
from search_spaces.errors import ArchitectureError
from search_spaces.kinds import block_kind
from search_spaces.layout import resolve


def random_block(rng: random.Random) -> Block:
    """A random block of any registered kind (the kind's record says which fields it reads)."""
    kind = rng.choice(BLOCK_KINDS)
    uses = block_kind(kind).uses
    # Only the fields the kind reads: the grammar refuses the others.
    fields = {
        "kernel": rng.choice([3, 5, 7]),
        "expansion": rng.choice([0.25, 0.5, 1, 2.5, 3, 4, 6]),
        "groups": rng.choice([1, 8]),
        "act": rng.choice([None, *ACTIVATIONS]),
    }
    fields = {name: value for name, value in fields.items() if name in uses}
    # a fused-MBConv that does not widen has no place for squeeze-excite
    if "se" in uses and (kind != "fmb" or fields["expansion"] >= 2):
        fields.update(se=rng.choice([0, 0.25]), se_hard=rng.random() < 0.3)
    return Block(
        kind,
        channels=rng.choice([8, 16, 24, 40, 64]),
        stride=rng.choice([1, 2]),
        repeats=rng.randint(1, 2),
        **fields,
    )


def random_arch(rng: random.Random) -> Architecture:
    """A random architecture whose feature maps do not vanish at its resolution."""
    while True:
        arch = _draw(rng)
        try:
            resolve(arch)
            return arch
        except ArchitectureError:
            continue


def _draw(rng: random.Random) -> Architecture:
    head_kind = rng.choice(["conv", "pool", "norm"])
    return Architecture(
        stem=Stem(
            channels=rng.choice([8, 16, 32]),
            kernel=rng.choice([3, 4, 7]) if rng.random() < 0.3 else 3,
            stride=rng.choice([1, 2]),
            kind=rng.choice(["conv", "patch"]),
            pool=rng.random() < 0.3,
        ),
        stages=[[random_block(rng) for _ in range(rng.randint(1, 2))] for _ in range(rng.randint(1, 4))],
        head=Head(
            head_kind,
            channels=rng.choice([64, 128]) if head_kind == "conv" else 0,
            hidden=rng.choice([0, 32]),
            dropout=rng.choice([0, 0.2]),
        ),
        resolution=rng.choice([16, 32, 33, 48, 97]),
        act=rng.choice(ACTIVATIONS),
        width=rng.choice([0.5, 1.0, 1.25]),
        depth=rng.choice([1.0, 1.5]),
        drop_path=rng.choice([0.0, 0.2]),
    )
