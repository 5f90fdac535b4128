"""nas: hardware-aware neural architecture search for CNNs.

    import nas
    result = nas.search(space="nasbench_macro", strategy="evolution", evaluator="nasbench_macro",
                        evaluator_options={"path": "nas-bench-macro_cifar10.json"}, budget=50)
    result.best, result.trials, nas.leaderboard(top=10)

Names are imported on first use, so ``import nas`` is cheap and never imports torch.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "search": "nas.run.api",
    "leaderboard": "nas.run.results",
    "SearchResult": "nas.run.api",
    "CategoricalSpace": "search_spaces.space",
    "SearchSpace": "search_spaces.space",
    "Architecture": "search_spaces.arch",
    "load_space": "search_spaces.registry",
    "list_spaces": "search_spaces.registry",
    "build_model": "search_spaces.builder",
    "NasError": "search_spaces.errors",
    "train_supernet": "nas.oneshot.supernet",
    "extract_member": "nas.oneshot.supernet",
}

__all__ = [  # the names of _EXPORTS
    "Architecture", "CategoricalSpace", "NasError", "SearchResult", "SearchSpace", "build_model",
    "extract_member", "leaderboard", "list_spaces", "load_space", "search", "train_supernet",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nas' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
