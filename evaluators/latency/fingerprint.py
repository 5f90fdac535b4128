"""What a latency depends on besides the network: device, threads, batch, dtype, layout, runtime.

Every profile is stored under its fingerprint's slug, so a table measured on one machine (or with
another thread count, batch or torch version) is never taken for another's.
"""
from __future__ import annotations

import hashlib
import json
import platform
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from search_spaces.errors import ConfigError

# int8: post-training static quantization (evaluators.quantize), timed on the CPU
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "int8": torch.qint8}
PLACEMENTS = ("per-round", "fixed")
REFERENCES = ("block", "matmul", "none")
STATISTICS = ("lower-half", "median")  # what one latency is made of: see measure.py
# What a latency's milliseconds are. "wall-clock": what a stopwatch loop on the machine sees
# (benchmarks/latency_stopwatch.py checks it). "reference-scaled": profiles before 2026-12-07, whose
# times were scaled to a reference timed in a tight loop (about 0.7x a stopwatch's): refused.
UNIT = "wall-clock"
LEGACY_UNIT = "reference-scaled"


def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo``), or what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown cpu"


@dataclass(frozen=True)
class Fingerprint:
    """Names a latency profile: two measurements compare only when their fingerprints are equal."""

    device: str  # "cpu" or "cuda"
    hardware: str  # CPU model or GPU name
    threads: int  # intra-op threads (CPU); 0 on CUDA
    batch: int
    dtype: str
    layout: str  # "channels_last" or "contiguous"
    runtime: str  # a registered runtime (evaluators/latency/runtimes/)
    runtime_version: str
    placement: str = "fixed"  # where the weights lay while timed; profiles before this field: "fixed"
    reference: str = "none"  # times scaled by a reference workload ("block", "matmul") or raw; before: "none"
    statistic: str = "median"  # how a module's runs make one latency; profiles before this field: "median"
    unit: str = LEGACY_UNIT  # what its milliseconds are (UNIT); profiles before this field were scaled

    @property
    def slug(self) -> str:
        """A readable, filesystem-safe, unique directory name."""
        hardware = re.sub(r"[^a-z0-9]+", "-", self.hardware.lower()).strip("-")[:40]
        digest = hashlib.blake2b(json.dumps(asdict(self), sort_keys=True).encode(), digest_size=4).hexdigest()
        threads = f"-t{self.threads}" if self.device == "cpu" else ""
        return f"{self.device}-{hardware}{threads}-b{self.batch}-{self.dtype}-{self.runtime}-{digest}"

    def describe(self) -> str:
        threads = f", {self.threads} thread{'s' * (self.threads != 1)}" if self.device == "cpu" else ""
        return (f"{self.hardware} ({self.device}{threads}), batch {self.batch}, {self.dtype}, {self.layout}, "
                f"{self.runtime} {self.runtime_version}, weights placed {self.placement}, reference {self.reference}, "
                f"{self.statistic} of the runs, {self.unit} ms")

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Fingerprint:
        try:
            return cls(**data)  # type: ignore[arg-type]
        except TypeError as exc:
            raise ConfigError(f"latency profile: unreadable fingerprint ({exc})") from None

    def differences(self, other: Fingerprint) -> list[str]:
        """``field: mine != theirs`` for each field that differs."""
        mine, theirs = asdict(self), asdict(other)
        return [f"{k}: {mine[k]} != {theirs[k]}" for k in mine if mine[k] != theirs[k]]
