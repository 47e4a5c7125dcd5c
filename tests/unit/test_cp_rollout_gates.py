"""Health gates of a wave, judged from device progress and telemetry window payloads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from control_plane.config.rollout_policy import GatePolicy
from control_plane.rollouts import gates as g
from control_plane.testing import telemetry_window
from protocols import Percentiles, ShadowSummary

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
POLICY = GatePolicy(ack_timeout_s=60, offline_deadline_s=600, min_windows=2,
                    health_timeout_s=120)


def dev(device_id: str, state: str, online: bool = True, ago: float = 10,
        acked_ago: float | None = None) -> g.DeviceProgress:
    acked = NOW - timedelta(seconds=acked_ago) if acked_ago is not None else None
    return g.DeviceProgress(device_id, state, online, NOW - timedelta(seconds=ago), acked)


def payload(release: str, counts: dict[str, int], errors: int = 0, p95: float = 10.0,
            shadow: ShadowSummary | None = None) -> dict[str, Any]:
    window = telemetry_window("d1", 1, release, class_counts=counts, errors=errors,
                              p95_ms=p95, shadow=shadow)
    return window.model_dump(mode="json", by_alias=True)


def wave(new: list[dict[str, Any]], base: list[dict[str, Any]], mode: str = "active",
         release: str = "r2") -> g.WaveTelemetry:
    t = g.WaveTelemetry()
    for p in new:
        assert g.add_candidate_window(t, "d1", p, mode, release)
    for p in base:
        g.add_active_window(t.baseline, p)
    return t


def test_ack_gate_waits_fails_and_passes() -> None:
    assert g.ack_gate([dev("a", "acknowledged"), dev("b", "pending")]).status == "wait"
    assert g.ack_gate([dev("a", "acknowledged"), dev("b", "planned")]).status == "wait"
    failed = g.ack_gate([dev("a", "acknowledged"), dev("b", "failed")])
    assert failed.status == "fail" and "b" in failed.detail
    # Offline devices neither block the wave nor pass it silently.
    offline = g.ack_gate([dev("a", "acknowledged"), dev("b", "pending", online=False)])
    assert offline.status == "pass" and "1 offline pending" in offline.detail
    assert g.ack_gate([dev("b", "pending", online=False)]).status == "wait"
    assert g.ack_gate([dev("b", "expired", online=False)]).status == "fail"


def test_deadlines() -> None:
    assert g.overdue(dev("a", "pending", ago=61), POLICY, NOW) == "failed"
    assert g.overdue(dev("a", "pending", ago=59), POLICY, NOW) is None
    assert g.overdue(dev("a", "pending", online=False, ago=599), POLICY, NOW) is None
    assert g.overdue(dev("a", "pending", online=False, ago=601), POLICY, NOW) == "expired"
    # The ack timeout of a device that came online late counts from then.
    late = g.DeviceProgress("a", "pending", True, NOW - timedelta(seconds=500),
                            None, NOW - timedelta(seconds=30))
    assert g.overdue(late, POLICY, NOW) is None
    assert g.overdue(dev("a", "acknowledged", ago=6000), POLICY, NOW) is None


def test_telemetry_gate() -> None:
    acked = [dev("a", "acknowledged", acked_ago=10), dev("b", "acknowledged", acked_ago=200)]
    assert g.telemetry_gate(acked, {"a": 2, "b": 3}, POLICY, NOW).status == "pass"
    assert g.telemetry_gate(acked[:1], {"a": 1}, POLICY, NOW).status == "wait"
    late = g.telemetry_gate(acked, {"a": 2, "b": 1}, POLICY, NOW)
    assert late.status == "fail" and "b" in late.detail
    ack_only = POLICY.model_copy(update={"min_windows": 0})
    assert g.telemetry_gate(acked, {}, ack_only, NOW).status == "skip"


def test_a_good_release_passes_every_gate() -> None:
    base = [payload("r1", {"dog": 60, "cat": 40})] * 3
    new = [payload("r2", {"dog": 55, "cat": 45}, p95=11.0)] * 2
    results = g.evaluate_wave("active", [dev("d1", "acknowledged", acked_ago=5)],
                              wave(new, base), POLICY, NOW)
    assert [r.name for r in results] == ["ack", "telemetry", "error_rate", "latency_p95",
                                         "class_shift"]
    assert g.outcome(results) == "passed", results


def test_garbage_predictions_fail_the_class_shift_gate() -> None:
    base = [payload("r1", {"dog": 60, "cat": 40})] * 3
    new = [payload("r2", {"dog": 100})] * 2
    result = g.class_shift_gate(wave(new, base), POLICY)
    assert result.status == "fail" and result.value is not None and result.value > 0.25


def test_class_shift_is_calibrated_to_sample_size() -> None:
    # The same shift on 10 frames is noise; on 10,000 frames it is real.
    small = g.class_shift({"dog": 7, "cat": 3}, {"dog": 3, "cat": 7}, 0.001)
    large = g.class_shift({"dog": 7000, "cat": 3000}, {"dog": 3000, "cat": 7000}, 0.001)
    assert small[0] > 0.25 and large[0] > 0.25  # both above a fixed threshold...
    assert small[0] < small[1] and large[0] > large[1]  # ...different verdicts
    assert large[2] < 1e-6


def test_class_shift_waits_for_enough_frames_then_gives_up() -> None:
    few = wave([payload("r2", {"dog": 4})], [payload("r1", {"dog": 2, "cat": 2})])
    assert g.class_shift_gate(few, POLICY).status == "wait"  # 4 frames cannot tell
    gave_up = g.class_shift_gate(few, POLICY, give_up=True)
    assert gave_up.status == "fail" and "fewer than 87 frames" in gave_up.detail
    results = g.evaluate_wave("active", [dev("d1", "acknowledged", acked_ago=5)],
                              wave([payload("r2", {"dog": 4})] * 2,
                                   [payload("r1", {"dog": 2, "cat": 2})]), POLICY, NOW)
    assert g.outcome(results) == "running"


def test_class_shift_null_level_holds_its_false_alarm_rate() -> None:
    rng = np.random.default_rng(1)
    labels = ["cat", "dog", "empty"]
    alarms = 0
    for _ in range(400):
        a = rng.multinomial(200, [0.5, 0.3, 0.2])
        b = rng.multinomial(300, [0.5, 0.3, 0.2])
        psi, level, _ = g.class_shift(dict(zip(labels, a.tolist(), strict=True)),
                                      dict(zip(labels, b.tolist(), strict=True)), 0.05)
        alarms += psi > level
    assert alarms / 400 < 0.12  # alpha 0.05 with sampling slack


def test_error_rate_and_latency_against_the_previous_release() -> None:
    base = [payload("r1", {"dog": 100}, errors=1, p95=10.0)]
    errors = g.error_rate_gate(wave([payload("r2", {"dog": 100}, errors=20)], base), POLICY)
    assert errors.status == "fail"
    slow = g.latency_gate(wave([payload("r2", {"dog": 100}, p95=40.0)], base), POLICY)
    assert slow.status == "fail" and slow.limit == pytest.approx(17.0)
    ok = g.latency_gate(wave([payload("r2", {"dog": 100}, p95=14.0)], base), POLICY)
    assert ok.status == "pass"
    assert g.latency_gate(wave([payload("r2", {"dog": 1})], []), POLICY).status == "skip"


def test_shadow_agreement_gate() -> None:
    def summary(agree: int) -> ShadowSummary:
        return ShadowSummary(release_id="r2", frames_compared=100, agreements=agree,
                             class_counts={"dog": 50, "cat": 50},
                             latency_ms=Percentiles(p50=5, p95=10, p99=12))

    good = [payload("r1", {"dog": 50, "cat": 50}, shadow=summary(95))] * 2
    results = g.evaluate_wave("shadow", [dev("d1", "acknowledged", acked_ago=5)],
                              wave(good, [], mode="shadow"), POLICY, NOW)
    assert g.outcome(results) == "passed" and results[-1].name == "agreement"
    bad = wave([payload("r1", {"dog": 50, "cat": 50}, shadow=summary(30))] * 2, [],
               mode="shadow")
    assert g.agreement_gate(bad, POLICY).status == "fail"
    # A window from another candidate does not count.
    assert not g.add_candidate_window(g.WaveTelemetry(), "d1", good[0], "shadow", "r9")
