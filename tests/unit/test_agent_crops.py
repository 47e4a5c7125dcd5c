"""Crops and the batched model run: the pixels the model sees, one run or one per crop."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent.errors import ModelError
from edge_agent.regions.crops import CropCutter
from edge_agent.runtime import ModelRuntime
from protocols import CropSpec
from tests.region_kit import build_colour_model, colour_manifest


def frame(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    return cv2.resize(small, (320, 240), interpolation=cv2.INTER_CUBIC)


def test_a_crop_inside_the_frame_is_the_resized_square_with_context() -> None:
    bgr, cutter = frame(), CropCutter(32, 32, CropSpec(context=0.25, pad_value=114), 4)
    (crop,) = cutter.cut(bgr, [(100.0, 60.0, 140.0, 80.0)])  # 40 x 20: square of 60
    expected = cv2.resize(bgr[40:100, 90:150], (32, 32), interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(crop, expected)


def test_a_crop_leaving_the_frame_is_padded_with_pad_value() -> None:
    bgr, spec = frame(), CropSpec(context=0.0, pad_value=7)
    (crop,) = CropCutter(32, 32, spec, 4).cut(bgr, [(-32.0, -32.0, 32.0, 32.0)])
    canvas = np.full((64, 64, 3), 7, np.uint8)  # the square, padded by hand
    canvas[32:, 32:] = bgr[:32, :32]
    expected = cv2.resize(canvas, (32, 32), interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(crop[:15, :15], expected[:15, :15])  # all padding
    inner = np.abs(crop[17:, 17:].astype(int) - expected[17:, 17:].astype(int))
    assert inner.max() <= 2  # bilinear by warpAffine vs resize: the same to rounding


def test_only_as_many_crops_as_the_buffer_holds() -> None:
    cutter = CropCutter(16, 16, CropSpec(), 2)
    assert len(cutter.cut(frame(), [(0.0, 0.0, 10.0, 10.0)] * 5)) == 2


@pytest.fixture
def runtimes(tmp_path: Path) -> tuple[ModelRuntime, ModelRuntime, ModelRuntime]:
    dynamic, fixed = tmp_path / "dynamic.onnx", tmp_path / "fixed.onnx"
    dynamic.write_bytes(build_colour_model())
    fixed.write_bytes(build_colour_model(batch=1))
    manifest = colour_manifest(build_colour_model())
    return (ModelRuntime(dynamic, manifest, 1), ModelRuntime(dynamic, manifest, 1,
                                                               batch_crops=False),
            ModelRuntime(fixed, manifest, 1))


def test_batched_and_per_crop_runs_give_the_same_outputs(
        runtimes: tuple[ModelRuntime, ModelRuntime, ModelRuntime]) -> None:
    batched, per_crop, fixed = runtimes
    assert batched.batch_crops and not per_crop.batch_crops
    assert not fixed.batch_crops  # no dynamic batch axis: one run per crop, by itself
    rng = np.random.default_rng(2)
    crops = rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    crops[0, ...] = (40, 40, 210)  # a red square: a cat
    outs = [r.classify_crops(crops) for r in runtimes]
    for other in outs[1:]:
        np.testing.assert_allclose(other.logits, outs[0].logits, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(other.embeddings, outs[0].embeddings, rtol=1e-5, atol=1e-5)
        assert other.tops == outs[0].tops
    assert outs[0].tops[0] == 0 and outs[0].confidences[0] > 0.99
    # The whole-frame path, crop by crop (its results are views: copy each).
    singles = [per_crop.infer(c).logits.copy() for c in crops]
    np.testing.assert_allclose(singles, outs[0].logits, atol=1e-5)
    np.testing.assert_allclose(outs[0].probs.sum(axis=1), 1.0, atol=1e-6)
    first = outs[0].inference(0)
    assert first.top == 0 and np.array_equal(first.image, crops[0])


def test_a_crop_batch_with_non_finite_outputs_raises(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(build_colour_model(gain=float("nan")))
    runtime = ModelRuntime(path, colour_manifest(build_colour_model()), 1)
    with pytest.raises(ModelError, match="non-finite"):
        runtime.classify_crops(np.zeros((2, 32, 32, 3), np.uint8))
