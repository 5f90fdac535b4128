"""Hardware-aware latency: measurement, per-part lookup tables, learned predictors, device profiles."""
from evaluators.latency.fingerprint import Fingerprint
from evaluators.latency.measure import LatencySettings, Measurement, Measurer
from evaluators.latency.store import ProfileStore
from evaluators.latency.table import Calibration, LatencyTable

__all__ = ["Calibration", "Fingerprint", "LatencySettings", "LatencyTable", "Measurement", "Measurer", "ProfileStore"]
