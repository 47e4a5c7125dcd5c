"""WindowAccumulator: bins from the reference profile, percentiles, counts."""

from __future__ import annotations

import numpy as np
import pytest

from edge_agent.capture import CaptureCounters
from edge_agent.runtime import Inference
from edge_agent.telemetry import LatencySamples, WindowAccumulator
from protocols.features import bin_counts, input_stats
from tests.agent_kit import LABELS, profile


def inference(top: int, confidence: float, embedding: list[float], level: int) -> Inference:
    probs = np.array([1 - confidence, confidence] if top else [confidence, 1 - confidence],
                     np.float32)
    return Inference(
        logits=np.log(probs), probs=probs, embedding=np.array(embedding, np.float32),
        rgb=np.full((24, 32, 3), level, np.uint8), top=top, confidence=confidence,
        inference_ms=2.0,
    )


def test_counts_are_binned_with_the_profile_edges() -> None:
    prof = profile()
    acc = WindowAccumulator("gate", LABELS, prof)
    results = [inference(1, 0.95, [1.0, 1.0, 1.0], 200), inference(1, 0.72, [0.5, 0.0, 0.0], 190),
               inference(0, 0.55, [-1.0, -1.0, -1.0], 20)]
    for r in results:
        acc.add(r, e2e_ms=5.0, frame_age_ms=1.0)
    window = acc.close("up", CaptureCounters(captured=10, skipped=6, lost=1), now=acc.started + 2)
    assert window.frames_inferred == 3
    assert window.class_counts == {"dog": 2, "empty": 1}
    assert window.confidence_hist == bin_counts([0.95, 0.72, 0.55], prof.confidence.edges).tolist()
    for i, name in enumerate(prof.input_stats):
        values = [input_stats(r.rgb)[i] for r in results]
        assert window.input_hists[name] == bin_counts(values, prof.input_stats[name].edges).tolist()
    axes = np.array(prof.embedding_axes)
    proj = np.array([r.embedding for r in results]) @ axes.T
    for k, hist in enumerate(window.embedding_hists):
        assert hist == bin_counts(proj[:, k], prof.embedding_hists[k].edges).tolist()
    assert (window.frames_captured, window.frames_skipped, window.frames_lost) == (10, 6, 1)
    assert window.capture_fps == pytest.approx(5.0)
    assert window.inference_fps == pytest.approx(1.5)


def test_close_starts_a_fresh_window() -> None:
    acc = WindowAccumulator("gate", LABELS, profile())
    acc.add(inference(1, 0.9, [0, 0, 0], 100), 1.0, 1.0)
    acc.add_error()
    first = acc.close("up", CaptureCounters())
    second = acc.close("up", CaptureCounters())
    assert first.frames_inferred == 1 and first.errors == 1
    assert second.frames_inferred == 0 and second.errors == 0
    assert second.class_counts == {} and sum(second.confidence_hist) == 0
    assert second.inference_ms is None


def test_no_profile_still_counts() -> None:
    acc = WindowAccumulator("gate", None, None)
    window = acc.close("down", CaptureCounters(captured=3, skipped=3))
    assert window.state == "down" and window.frames_skipped == 3
    assert window.confidence_hist == [] and window.input_hists == {}


def test_percentiles_of_a_small_sample_are_exact() -> None:
    samples = LatencySamples(capacity=1000)
    for v in range(1, 101):
        samples.add(float(v))
    p = samples.percentiles()
    assert p is not None
    assert p.p50 == pytest.approx(np.percentile(np.arange(1, 101), 50))
    assert p.p95 == pytest.approx(np.percentile(np.arange(1, 101), 95))
    assert p.p99 == pytest.approx(np.percentile(np.arange(1, 101), 99))


def test_reservoir_is_bounded_and_unbiased() -> None:
    samples = LatencySamples(capacity=500, seed=3)
    values = np.random.default_rng(0).permutation(np.arange(20_000, dtype=float))
    for v in values:
        samples.add(v)
    p = samples.percentiles()
    assert p is not None
    assert samples._buf.size == 500
    assert p.p50 == pytest.approx(10_000, rel=0.1)
    assert p.p95 == pytest.approx(19_000, rel=0.05)


def test_fast_input_statistics_match_the_shared_definition() -> None:
    from edge_agent.telemetry import InputStatistics
    from protocols.features import input_stats

    stats = InputStatistics()
    rng = np.random.default_rng(5)
    images = [rng.integers(0, 256, (24, 32, 3), dtype=np.uint8),
              np.clip(rng.normal(100, 30, (96, 96, 3)), 0, 255).astype(np.uint8),
              np.zeros((10, 12, 3), np.uint8), np.full((10, 12, 3), 255, np.uint8)]
    for image in images:
        np.testing.assert_allclose(stats(image), input_stats(image), rtol=1e-4, atol=1e-4)


def test_scalar_binning_matches_the_shared_rule() -> None:
    from edge_agent.telemetry import bin_of
    from protocols.features import bin_index

    edges = [0.0, 0.25, 0.5, 1.0]
    for value in (-1.0, 0.0, 0.1, 0.25, 0.49, 0.5, 0.99, 1.0, 7.0, float("nan")):
        assert bin_of(value, edges) == int(bin_index(value, edges)), value
