"""The demo's simulated labeller names the animal in a crop cut the agent's way from a real
park clip (OpenCV video and its sidecar), and tells animals from people, balls and leaves."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent.regions.crops import CropCutter
from protocols import CropSpec
from scripts.labeller import ClipTruth, decode, judge
from trainer.synth import SceneSpec, SceneTruth, Schedule, write_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SceneTruth]:
    path = tmp_path_factory.mktemp("labeller") / "lawn.avi"
    truth = write_clip(path, SceneSpec(
        width=320, height=240, seconds=12, seed=5,
        schedule=Schedule(empty_share=0.1, animals_per_minute=12.0,
                          distractors_per_minute=8.0, max_group=2)))
    return path, truth


def _frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while (read := cap.read())[0]:
        frames.append(read[1])
    cap.release()
    return frames


def test_crops_cut_like_the_agent_get_their_objects_label(
    clip: tuple[Path, SceneTruth],
) -> None:
    path, truth = clip
    frames = _frames(path)
    reference = ClipTruth.load(path)
    cutter = CropCutter(160, 160, CropSpec(), 1)
    rng = np.random.default_rng(1)
    right = wrong = rejected_animals = distractors = distractors_rejected = 0
    for k in rng.permutation(len(frames))[:150]:
        for obj in truth.objects(int(k)):
            if obj.visible_fraction < 0.6 or min(obj.box[2:]) < 8:
                continue
            # The agent's motion box is the object's, grown and shifted a little.
            x, y, w, h = obj.box
            grow, (dx, dy) = rng.uniform(1.0, 1.3), rng.uniform(-0.1, 0.1, 2) * max(w, h)
            cx, cy = x + w / 2 + dx, y + h / 2 + dy
            box = (cx - w * grow / 2, cy - h * grow / 2, cx + w * grow / 2, cy + h * grow / 2)
            ok, jpeg = cv2.imencode(".jpg", cutter.cut(frames[int(k)], [box])[0])
            assert ok
            verdict = judge(decode(jpeg.tobytes()), [reference])
            if obj.kind == "distractor":
                distractors += 1
                distractors_rejected += verdict.reject
            elif verdict.reject:
                rejected_animals += 1
            elif verdict.label is not None:
                right += verdict.label == obj.label
                wrong += verdict.label != obj.label
    print(f"animals: {right} right, {wrong} wrong, {rejected_animals} rejected; "
          f"distractors: {distractors_rejected} of {distractors} rejected")
    assert right >= 20 and wrong <= 0.1 * (right + wrong)
    assert distractors >= 10 and distractors_rejected >= 0.7 * distractors


def test_a_crop_of_something_else_is_left_alone(clip: tuple[Path, SceneTruth]) -> None:
    path, _ = clip
    noise = np.random.default_rng(2).integers(0, 255, (160, 160, 3), dtype=np.uint8)
    verdict = judge(noise, [ClipTruth.load(path)])
    assert verdict.label is None and not verdict.reject
