"""WindowAccumulator: bins from the reference profile, percentiles, counts."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_agent.capture import CaptureCounters
from edge_agent.runtime import CropResults, Inference
from edge_agent.telemetry import LatencySamples, WindowAccumulator
from protocols.features import bin_counts, input_stats
from tests.agent_models import LABELS, profile


def inference(top: int, confidence: float, embedding: list[float], level: int,
              image: np.ndarray | None = None) -> Inference:
    probs = np.array([1 - confidence, confidence] if top else [confidence, 1 - confidence],
                     np.float32)
    return Inference(
        logits=np.log(probs), probs=probs, embedding=np.array(embedding, np.float32),
        image=np.full((24, 32, 3), level, np.uint8) if image is None else image, top=top,
        confidence=float(probs[top]), inference_ms=2.0,
    )


def varied_frames(n: int, seed: int = 4) -> list[np.ndarray]:
    """BGR frames spread over the profile's bins: dark to bright, flat to noisy, grey to
    coloured, sharp to blurred."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        tint = rng.uniform(0.2, 1.0, 3)
        img = rng.uniform(0, 255) * tint + rng.normal(0, rng.uniform(0, 90), (24, 32, 3))
        img = np.clip(img, 0, 255).astype(np.uint8)
        if rng.random() < 0.5:
            img = cv2.GaussianBlur(img, (5, 5), 0)
        frames.append(img)
    return frames


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
        values = [input_stats(r.image[..., ::-1])[i] for r in results]
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


def test_reservoir_extend_counts_like_one_add_per_value() -> None:
    """The window's summary feeds the reservoirs a batch at a time: a small sample stays
    exact, a large one stays bounded and uniform over the whole stream, not its start."""
    small = LatencySamples(capacity=1000)
    for chunk in np.array_split(np.arange(1, 101, dtype=float), 7):
        small.extend(chunk)
    p = small.percentiles()
    assert p is not None and p.p50 == pytest.approx(np.percentile(np.arange(1, 101), 50))
    big = LatencySamples(capacity=500, seed=3)
    stream = np.arange(20_000, dtype=float)  # in order: a biased reservoir would keep the start
    for chunk in np.array_split(stream, 97):
        big.extend(chunk)
    p = big.percentiles()
    assert p is not None and big._buf.size == 500 and big._seen == 20_000
    assert p.p50 == pytest.approx(10_000, rel=0.1)
    assert p.p95 == pytest.approx(19_000, rel=0.05)


def test_fast_input_statistics_match_the_shared_definition() -> None:
    from edge_agent.input_stats import InputStatistics

    stats = InputStatistics()
    rng = np.random.default_rng(5)
    singles = [rng.integers(0, 256, (24, 32, 3), dtype=np.uint8),
               np.clip(rng.normal(100, 30, (96, 96, 3)), 0, 255).astype(np.uint8),
               np.zeros((10, 12, 3), np.uint8), np.full((10, 12, 3), 255, np.uint8),
               np.full((8, 8, 3), (0, 0, 7), np.uint8),
               np.full((64, 64, 3), (37, 151, 200), np.uint8),  # flat, luma not an integer
               (np.full((64, 64, 3), 180, np.uint8) + rng.integers(0, 2, (64, 64, 3))
                ).astype(np.uint8)]
    batches = [im[None] for im in singles] + [np.stack(varied_frames(20)),
                                               np.stack(varied_frames(3, seed=9))]
    for frames in batches:
        out = np.full((len(frames), 4), np.nan, np.float32)
        stats(frames, out)  # BGR in; the shared definition takes RGB
        expected = [input_stats(np.ascontiguousarray(f[..., ::-1])) for f in frames]
        np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("bin_every", [1, 7, 256])
def test_summaries_match_per_frame_binning_of_the_shared_definitions(bin_every: int) -> None:
    """Values binned in chunks (and the rest at close) count like binning each frame with
    the trainer's definitions; two windows, so the chunk buffer restarts cleanly."""
    prof = profile()
    acc = WindowAccumulator("gate", LABELS, prof, bin_every=bin_every)
    rng = np.random.default_rng(8)
    frames = varied_frames(40)
    axes, mean = np.array(prof.embedding_axes), np.array(prof.embedding_mean)
    for part in (frames[:23], frames[23:]):
        results = [inference(int(rng.integers(0, 2)), float(rng.uniform(0.5, 1.0)),
                             list(rng.normal(0, 1.5, 3)), 0, image=f) for f in part]
        for r in results:
            acc.add(r, e2e_ms=5.0, frame_age_ms=1.0)
        window = acc.close("up", CaptureCounters())
        conf = [r.confidence for r in results]
        assert window.confidence_hist == bin_counts(conf, prof.confidence.edges).tolist()
        stats = np.array([input_stats(np.ascontiguousarray(r.image[..., ::-1]))
                          for r in results])
        for i, name in enumerate(prof.input_stats):
            assert window.input_hists[name] == bin_counts(
                stats[:, i], prof.input_stats[name].edges).tolist(), name
        proj = (np.array([r.embedding for r in results]) - mean) @ axes.T
        assert window.embedding_hists == [
            bin_counts(proj[:, k], h.edges).tolist() for k, h in enumerate(prof.embedding_hists)]
        assert sum(window.class_counts.values()) == window.frames_inferred == len(part)
        spread = [sum(1 for c in h if c) for h in window.input_hists.values()]
        assert max(spread) >= 3  # the frames do exercise several bins


def test_out_of_range_and_nan_values_go_to_the_end_bins() -> None:
    prof = profile()  # embedding edges -3..3 in 6 bins
    acc = WindowAccumulator("gate", LABELS, prof, bin_every=2)
    for _ in range(3):  # projections NaN and +1.4e9
        acc.add(inference(1, 0.9, [1e9, -1e9, float("nan")], 100), 1.0, 1.0)
    for _ in range(2):  # projections 0.87 and -1.4e9
        acc.add(inference(1, 0.9, [-1e9, 1e9, 1.5], 100), 1.0, 1.0)
    window = acc.close("up", CaptureCounters())
    assert window.embedding_hists == [[0, 0, 0, 2, 0, 3], [2, 0, 0, 0, 0, 3]]


def test_input_histograms_are_matched_by_name_not_by_position() -> None:
    """A verified manifest's profile has its keys sorted (canonical JSON): saturation
    before sharpness, unlike INPUT_STAT_NAMES. Each statistic keeps its own edges."""
    prof = profile()
    reordered = prof.model_copy(update={"input_stats": dict(sorted(prof.input_stats.items()))})
    assert list(reordered.input_stats) != list(prof.input_stats)
    frames = varied_frames(12)
    windows = []
    for p in (prof, reordered):
        acc = WindowAccumulator("gate", LABELS, p)
        for f in frames:
            acc.add(inference(1, 0.9, [0.0, 0.0, 0.0], 0, image=f), 1.0, 1.0)
        windows.append(acc.close("up", CaptureCounters()).input_hists)
    assert windows[0] == windows[1]
    saturation = [input_stats(np.ascontiguousarray(f[..., ::-1]))[3] for f in frames]
    assert windows[1]["saturation"] == bin_counts(
        saturation, prof.input_stats["saturation"].edges).tolist()


def test_frames_of_a_new_size_are_measured_apart() -> None:
    prof = profile()
    acc = WindowAccumulator("gate", LABELS, prof)
    small, large = varied_frames(3), [cv2.resize(f, (64, 48)) for f in varied_frames(2, seed=6)]
    for f in [*small, *large]:
        acc.add(inference(1, 0.9, [0.0, 0.0, 0.0], 0, image=f), 1.0, 1.0)
    window = acc.close("up", CaptureCounters())
    values = [input_stats(np.ascontiguousarray(f[..., ::-1]))[0] for f in [*small, *large]]
    assert window.input_hists["brightness"] == bin_counts(
        values, prof.input_stats["brightness"].edges).tolist()


@pytest.mark.parametrize("bin_every", [2, 7, 256])
def test_crops_queued_a_frame_at_a_time_count_like_single_inputs(bin_every: int) -> None:
    """Regions mode queues each frame's crops in one go; a frame whose crops straddle a
    full queue is split across two summaries and counts as if added one crop at a time."""
    prof = profile()
    acc = WindowAccumulator("lawn", LABELS, prof, bin_every=bin_every, mode="regions")
    rng = np.random.default_rng(5)
    crops = varied_frames(30)
    tops, confidences, embeddings = [], [], []
    k = 3
    for start in range(0, 30, k):
        images = np.stack(crops[start:start + k])
        emb = rng.normal(0, 1.5, (k, 3)).astype(np.float32)
        top = [int(t) for t in rng.integers(0, 2, k)]
        conf = [float(c) for c in rng.uniform(0.5, 1.0, k)]
        acc.add_crops(CropResults(np.zeros((k, 3), np.float32), np.zeros((k, 3), np.float32),
                                  emb, images, top, conf, 4.0), 6.0, 1.0, condition=0)
        acc.add_crops(None, 2.0, 1.0, condition=0)  # a frame with nothing to classify
        tops += top
        confidences += conf
        embeddings += list(emb)
    window = acc.close("up", CaptureCounters(), mode="regions")
    assert window.frames_inferred == 20 and sum(window.class_counts.values()) == 30
    assert window.class_counts == {LABELS[t]: tops.count(t) for t in set(tops)}
    assert window.confidence_hist == bin_counts(confidences, prof.confidence.edges).tolist()
    stats = np.array([input_stats(np.ascontiguousarray(c[..., ::-1])) for c in crops])
    for i, name in enumerate(prof.input_stats):
        assert window.input_hists[name] == bin_counts(
            stats[:, i], prof.input_stats[name].edges).tolist(), name
    proj = (np.array(embeddings) - np.array(prof.embedding_mean)) @ np.array(
        prof.embedding_axes).T
    assert window.embedding_hists == [
        bin_counts(proj[:, k], h.edges).tolist() for k, h in enumerate(prof.embedding_hists)]
    assert window.inference_ms is not None and window.inference_ms.p99 == 4.0  # per frame
    assert window.e2e_ms is not None and window.e2e_ms.p50 == pytest.approx(4.0)
