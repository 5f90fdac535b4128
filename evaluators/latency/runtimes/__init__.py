"""Latency runtimes: one record per way of running a module to time it (eager torch, ONNX Runtime).

A runtime's record (`Runtime`) says which devices and dtypes it measures on, what it needs
installed, its version (which goes into every profile's fingerprint), whether a module's weights
can be moved to new memory between rounds, and how to build a timed runner for a module.
`LatencySettings`, the `Measurer` and the fingerprint read the record, so adding a runtime is one
module whose ``RUNTIME`` is its record plus one line in `BUILTIN` below; the contract tests
(tests/test_latency_runtimes.py) then time modules through it.
"""
from __future__ import annotations

import importlib

from evaluators.latency.runtimes.record import Runner, Runtime, Target, keep_weights
from search_spaces.errors import unknown

_RUNTIMES: dict[str, Runtime] = {}


def register(runtime: Runtime) -> Runtime:
    """Make ``runtime`` available as ``runtime=<name>`` (its name must be new)."""
    if not runtime.name or not runtime.name.replace("-", "").isalnum():
        raise ValueError(f"runtime name {runtime.name!r} must be letters, digits and '-'")
    if runtime.name in _RUNTIMES:
        raise ValueError(f"runtime {runtime.name!r} is registered already")
    _RUNTIMES[runtime.name] = runtime
    return runtime


def runtime_names() -> tuple[str, ...]:
    """Every registered runtime, in registration order."""
    return tuple(_RUNTIMES)


def get_runtime(name: str) -> Runtime:
    """The record of runtime ``name``; a one-line ConfigError naming the registered ones if none."""
    try:
        return _RUNTIMES[name]
    except KeyError:
        raise unknown("runtime", name, runtime_names()) from None


# The built-in runtimes: each module's ``RUNTIME`` is registered, in this order.
BUILTIN = (
    "evaluators.latency.runtimes.eager",
    "evaluators.latency.runtimes.ort",
)
for _module in BUILTIN:
    register(importlib.import_module(_module).RUNTIME)

__all__ = ["BUILTIN", "Runner", "Runtime", "Target", "get_runtime", "keep_weights", "register",
           "runtime_names"]
