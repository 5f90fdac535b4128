"""Profiling the device: latency tables, calibration and predictors (`nas latency`)."""
