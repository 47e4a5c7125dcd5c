"""The release gate's verdict on a version's metrics (pure logic)."""

from __future__ import annotations

from control_plane.config import ReleaseGateSettings
from control_plane.services.release_gate import gate_failures


def test_the_trainers_failed_gate_is_refused_by_default() -> None:
    weak = {"test_accuracy": 0.0, "quality_gate_passed": 0.0, "weak_model_allowed": 1.0}
    assert gate_failures(weak, ReleaseGateSettings(), "petnet") == [
        "the trainer's quality gate failed (registered with --allow-weak-model)"]
    assert gate_failures(weak, ReleaseGateSettings(require_trainer_gate=False), "petnet") == []
    assert gate_failures({"quality_gate_passed": 1.0}, ReleaseGateSettings(), "petnet") == []


def test_minimums_per_model_override_the_fleet_wide_ones() -> None:
    gate = ReleaseGateSettings(min_metrics={"test_accuracy": 0.8, "test_macro_f1": 0.7},
                               models={"petnet": {"test_accuracy": 0.9}})
    metrics = {"test_accuracy": 0.85, "test_macro_f1": 0.75}
    assert gate_failures(metrics, gate, "other") == []
    assert gate_failures(metrics, gate, "petnet") == ["test_accuracy 0.85 < 0.9"]


def test_a_missing_or_nan_metric_fails() -> None:
    gate = ReleaseGateSettings(min_metrics={"test_accuracy": 0.8})
    assert gate_failures({}, gate, "m") == [
        "no test_accuracy in its metrics (the gate needs test_accuracy >= 0.8)"]
    assert gate_failures({"test_accuracy": float("nan")}, gate, "m") == ["test_accuracy nan < 0.8"]
