"""Random search: uniform samples from the space, never the same network twice."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nas.strategies.base import Strategy


class RandomSearch(Strategy):
    """The baseline every NAS paper should beat."""

    name = "random"

    def __init__(self, space, problem=None, seed: int = 0, max_tries: int = 1000) -> None:
        super().__init__(space, problem, seed)
        self.max_tries = max_tries

    @classmethod
    def options(cls) -> Sequence[tuple[str, Any, str]]:
        return (("max_tries", 1000, "draws per proposal before declaring the space exhausted"),)

    def ask(self, n: int = 1) -> list[Any]:
        out: list[Any] = []
        tries = 0
        while len(out) < n and tries < self.max_tries * n:
            tries += 1
            arch = self.space.sample(self.rng)
            if self._claim(arch):
                out.append(arch)
        return out

    def tell(self, arch: Any, metrics: Mapping[str, Any]) -> None:
        self.seen.add(self.space.key(arch))

    def state_dict(self) -> dict[str, Any]:
        return self._base_state()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._load_base_state(state)
