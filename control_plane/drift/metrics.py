"""Prometheus gauges of the latest drift analysis (served on the API's ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Gauge, Histogram

DRIFTED_DEVICES = Gauge(
    "parkwatch_cp_drift_devices",
    "Devices whose drift holds K of their last N windows, by release (latest analysis).",
    ["release"],
)
FLEET_PSI = Gauge(
    "parkwatch_cp_drift_psi",
    "Fleet-wide PSI over the sliding range, by release and feature (latest analysis).",
    ["release", "feature"],
)
FLEET_PSI_ALARM = Gauge(
    "parkwatch_cp_drift_psi_alarm",
    "The calibrated PSI alarm level that goes with parkwatch_cp_drift_psi.",
    ["release", "feature"],
)
ESTIMATED_ACCURACY = Gauge(
    "parkwatch_cp_estimated_accuracy",
    "Label-free estimated accuracy (calibrated confidence) over the sliding range, by release.",
    ["release"],
)
ANALYSIS_SECONDS = Histogram(
    "parkwatch_cp_drift_analysis_seconds", "Time one drift analysis of the fleet takes."
)
