"""Latency runtimes: one record per way of running a module to time it (eager torch, ONNX Runtime).

A runtime's record (`Runtime`) says which devices and dtypes it measures on, what it needs
installed, its version (which goes into every profile's fingerprint), whether a module's weights
can be moved to new memory between rounds, and how to build a timed runner for a module.
`LatencySettings`, the `Measurer` and the fingerprint read the record, so adding a runtime is one
module whose ``RUNTIME`` is its record plus one line in `BUILTIN` below; the contract tests
(tests/evaluators/latency/test_latency_runtimes.py) then time modules through it.
"""
from __future__ import annotations

from evaluators.latency.runtimes.record import Runner, Runtime, Target, keep_weights
from search_spaces.errors import RegistrationError
from search_spaces.registries import Options, Registry


def _check(name: str, runtime: Runtime) -> None:
    if not name.replace("-", "").isalnum():
        raise RegistrationError(f"runtime name {name!r} must be letters, digits and '-'")


# ``runtime=<name>``; a runtime has no options of its own (the latency settings are everyone's).
RUNTIMES: Registry[Runtime] = Registry("runtime", check=_check, named=lambda runtime: runtime.name,
                                       options=lambda runtime: Options())
register = RUNTIMES.add  # register(runtime): ``runtime=<runtime.name>`` (a new name only)

# The built-in runtimes: each module's ``RUNTIME`` is registered, in this order.
BUILTIN = (
    "evaluators.latency.runtimes.eager",
    "evaluators.latency.runtimes.ort",
)
RUNTIMES.add_modules(BUILTIN, "RUNTIME")

__all__ = ["BUILTIN", "RUNTIMES", "Runner", "Runtime", "Target", "keep_weights", "register"]
