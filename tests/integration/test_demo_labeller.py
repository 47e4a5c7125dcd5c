"""The demo's simulated labeller names the animal in a crop cut the agent's way from a real
park clip (OpenCV video and its sidecar), and tells animals from people, balls and leaves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent.regions.crops import CropCutter
from protocols import CropSpec
from scripts.labeller import ClipTruth, Spacing, decode, judge
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


def test_scenery_at_the_frame_edge_is_never_named_an_animal(
    clip: tuple[Path, SceneTruth],
) -> None:
    """The agent cuts regions that leave the frame (padded grey): such a crop of grass or
    bushes, with no object near it, must not be labelled an animal."""
    path, truth = clip
    frames = _frames(path)
    reference = ClipTruth.load(path)
    cutter = CropCutter(160, 160, CropSpec(), 1)
    rng = np.random.default_rng(3)
    height, width = frames[0].shape[:2]
    judged = named = 0
    scores = []
    for k in rng.integers(0, len(frames), 600):
        side = rng.uniform(30, 90)
        x0, y0 = rng.uniform(0, width - side), rng.uniform(0, height - side)
        x0, y0 = [(-0.4 * side, y0), (width - 0.6 * side, y0), (x0, -0.4 * side),
                  (x0, height - 0.6 * side)][int(rng.integers(4))]
        box = (x0, y0, x0 + side, y0 + side)
        near = [o for o in truth.objects(int(k))
                if o.box[0] < box[2] + 10 and o.box[0] + o.box[2] > box[0] - 10
                and o.box[1] < box[3] + 10 and o.box[1] + o.box[3] > box[1] - 10]
        if near:
            continue
        ok, jpeg = cv2.imencode(".jpg", cutter.cut(frames[int(k)], [box])[0])
        assert ok
        judged += 1
        verdict = judge(decode(jpeg.tobytes()), [reference])
        named += verdict.label is not None
        scores.append(verdict.score)
    print(f"{named} of {judged} crops of scenery named an animal; match scores (median, "
          f"99 %, max) {np.quantile(scores, [0.5, 0.99, 1]).round(3)}")
    # A match from 0.6 named 6-7 % of them an animal.
    assert judged >= 200 and named <= 0.02 * judged


def test_labels_are_spread_over_capture_time() -> None:
    """An agent's first crops come in a burst of one animal: one label per spacing."""
    spacing, key = Spacing(5.0), ("park1-gate", "r1")
    start = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
    taken = []
    for i in range(40):  # ten in the first two seconds, then one every 2 s
        at = start + timedelta(seconds=0.2 * i if i < 10 else 2.0 * (i - 9))
        if spacing.free(key, at):
            spacing.take(key, at)
            taken.append((at - start).total_seconds())
    assert taken == [6.0 * i for i in range(11)]
    assert spacing.free(("park1-lawn", "r1"), start)  # per device and release
