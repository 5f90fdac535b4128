"""Random search: uniform samples from the space, never the same network twice."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from nas.strategies.base import Strategy
from search_spaces.checks import check_int


class RandomSearch(Strategy):
    """The baseline every NAS paper should beat."""

    name = "random"
    option_help: ClassVar[Mapping[str, str]] = {"max_tries": "draws per proposal before declaring the space exhausted"}

    def __init__(self, space, problem=None, seed: int = 0, max_tries: int = 1000) -> None:
        super().__init__(space, problem, seed)
        check_int("max_tries", max_tries, 1)  # 0 would end every run at once, "space exhausted"
        self.max_tries = max_tries

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
