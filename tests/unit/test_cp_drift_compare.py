"""Merging windows and comparing them with a reference profile (pure logic, synthetic data)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from control_plane.config import ControlPlaneSettings
from control_plane.config.drift import DriftSettings, FeatureThreshold
from control_plane.drift import synthetic
from control_plane.drift.compare import compare, reference_accuracy, window_drifted
from control_plane.drift.summary import Summary
from control_plane.errors import ConfigError

T0 = datetime(2026, 1, 1, tzinfo=UTC)
REF = synthetic.profile()


def window(seq: int, shift: float = 0.0, frames: int = 200, seed: int = 0) -> dict:
    return synthetic.window(REF, "cam-a", seq, rng=np.random.default_rng(seed + seq),
                            shift=shift, frames=frames, start=T0)


def vector(s: Summary) -> np.ndarray:
    return np.concatenate([s.confidence, *s.inputs.values(), *s.embeddings, s.class_counts])


def test_merging_is_adding_up_and_order_free() -> None:
    ws = [window(i) for i in range(6)]
    one, halves = Summary.empty(REF), [Summary.empty(REF), Summary.empty(REF)]
    for i, w in enumerate(ws):
        assert one.add_window(w)
        halves[i % 2].add_window(w)
    halves[1].merge(halves[0])
    np.testing.assert_array_equal(vector(one), vector(halves[1]))
    assert one.frames == 6 * 200 and one.windows == halves[1].windows == 6
    brightness = sum(np.asarray(w["cameras"][0]["input_hists"]["brightness"]) for w in ws)
    np.testing.assert_array_equal(one.inputs["brightness"], brightness)


def test_a_window_on_other_bins_is_left_out_and_counted() -> None:
    s = Summary.empty(REF)
    bad = window(1)
    bad["cameras"][0]["embedding_hists"] = bad["cameras"][0]["embedding_hists"][:1]
    assert not s.add_window(bad)
    assert s.mismatched == 1 and s.windows == 0 and s.frames == 0


def test_verdicts_follow_the_shift_size() -> None:
    settings = DriftSettings()
    rates = []
    for shift in (0.0, 0.3, 0.6, 1.2):
        verdicts = [window_drifted(REF, window(i, shift, seed=100), settings) for i in range(40)]
        rates.append(sum(bool(v) for v in verdicts) / len(verdicts))
    assert rates == sorted(rates) and rates[0] <= 0.1 and rates[-1] == 1.0


def test_the_window_verdict_agrees_with_the_full_comparison() -> None:
    settings = DriftSettings()
    for i in range(30):
        w = window(i, shift=0.35, seed=7)
        s = Summary.empty(REF)
        s.add_window(w)
        assert window_drifted(REF, w, settings) == compare(REF, s, settings)["drifted"]


def test_too_few_frames_are_not_judged() -> None:
    settings = DriftSettings(min_samples=50)
    w = window(1, shift=3.0, frames=20)
    assert window_drifted(REF, w, settings) is None
    s = Summary.empty(REF)
    s.add_window(w)
    stats = compare(REF, s, settings)
    assert not stats["judged"] and not stats["drifted"] and stats["estimated_accuracy"] is None


def test_per_feature_thresholds_change_the_verdict() -> None:
    s = Summary.empty(REF)
    for i in range(5):
        s.add_window(window(i, shift=0.5))
    default = compare(REF, s, DriftSettings())
    assert "input.brightness" in default["drifted_features"]
    lenient = DriftSettings(thresholds={"input.brightness": FeatureThreshold(min_psi=5.0)})
    relaxed = compare(REF, s, lenient)
    assert "input.brightness" not in relaxed["drifted_features"]
    assert relaxed["features"]["input.brightness"]["psi_alarm"] == 5.0


def test_estimated_accuracy_drops_with_lower_confidence() -> None:
    s = Summary.empty(REF)
    for i in range(5):
        s.add_window(window(i, shift=2.5))
    stats = compare(REF, s, DriftSettings(max_accuracy_drop=0.05))
    assert stats["reference_accuracy"] == pytest.approx(reference_accuracy(REF))
    assert stats["accuracy_drop"] > 0.05 and stats["accuracy_dropped"]


def test_k_above_n_is_a_config_error_that_names_both() -> None:
    with pytest.raises(ConfigError, match=r"alert_drifted_windows \(K=6\).*N=5"):
        ControlPlaneSettings.load(None, drift={"alert_drifted_windows": 6, "alert_windows": 5})


def test_one_release_whose_analysis_fails_does_not_stop_the_others() -> None:
    """Windows merged on another profile's bins (a corrupt or swapped profile) make the
    comparison raise: that release is named with the reason, the others are reported."""
    from collections import deque

    from control_plane.drift.analyser import analysis_reports
    from control_plane.drift.collect import Collected, DeviceWindows

    other = synthetic.profile(bins=8)
    good, bad = Summary.empty(REF), Summary.empty(other)
    good.add_window(window(1))
    bad.add_window(synthetic.window(other, "cam-b", 1, rng=np.random.default_rng(1), start=T0))
    found = Collected(
        profiles={"r-good": REF, "r-bad": REF},
        devices={"r-good": {"cam-a": DeviceWindows(good, deque(), T0, T0)},
                 "r-bad": {"cam-b": DeviceWindows(bad, deque(), T0, T0)}},
    )
    failed: dict[str, str] = {}
    out = analysis_reports(found, DriftSettings(), failed)
    assert [rel for rel, _, _ in out] == ["r-good"]
    assert list(failed) == ["r-bad"] and "ValueError" in failed["r-bad"]
    with pytest.raises(ValueError):
        analysis_reports(found, DriftSettings())  # no place to report it: raise
