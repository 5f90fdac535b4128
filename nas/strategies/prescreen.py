"""Pre-screening: a strategy proposes several candidates, a cheap score keeps the best of them.

``Prescreened(strategy, score, keep=0.25)`` asks its strategy for ``ceil(n / keep)`` candidates,
scores each with ``score(arch)`` (a zero-cost proxy: a fraction of a second, no training) and
passes on the ``n`` best. The others are told back as failed (``prescreened out``): the strategy
never proposes them again and no evaluation budget is spent on them.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from search_spaces.errors import ConfigError


class Prescreened:
    """A strategy wrapped so that only the best-scoring share of its proposals is evaluated."""

    def __init__(self, strategy: Any, score: Callable[[Any], float], keep: float = 0.25, label: str = "score") -> None:
        if isinstance(keep, bool) or not isinstance(keep, (int, float)) or not 0 < keep <= 1:
            raise ConfigError(f"prescreen_keep: must be a number in (0, 1], got {keep!r}")
        self.strategy = strategy
        self.score = score
        self.keep = float(keep)
        self.label = label
        self.screened = 0  # candidates dropped without evaluation

    def __getattr__(self, name: str) -> Any:  # name, space, problem, rejected... of the strategy
        return getattr(self.strategy, name)

    def ask(self, n: int = 1) -> list[Any]:
        pool = self.strategy.ask(math.ceil(n / self.keep))
        scored = sorted(((self.score(arch), i) for i, arch in enumerate(pool)), reverse=True)
        chosen = {i for _, i in scored[:n]}
        for value, i in scored[n:]:
            self.screened += 1
            self.strategy.tell(pool[i], {"status": "failed",
                                         "error": f"prescreened out ({self.label} {value:.6g})"})
        return [pool[i] for i in sorted(chosen)]

    def tell(self, arch: Any, metrics: Mapping[str, Any]) -> None:
        self.strategy.tell(arch, metrics)

    def state_dict(self) -> dict[str, Any]:
        return {"strategy": self.strategy.state_dict(), "screened": self.screened}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.strategy.load_state_dict(state["strategy"])
        self.screened = int(state["screened"])
