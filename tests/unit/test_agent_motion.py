"""MotionGate: static frames are skipped, changes and the max-skip interval are not."""

from __future__ import annotations

import cv2
import numpy as np

from edge_agent.motion import THUMB_H, THUMB_W, MotionGate


def frame(level: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(level, 20, (480, 640, 3)), 0, 255).astype(np.uint8)


def test_the_thumbnail_is_the_colour_first_area_average_within_one_grey_level() -> None:
    gate, bgr = MotionGate(2.0, 30.0), frame(120)
    gate.static(bgr, 0.0)
    small = cv2.resize(bgr, (THUMB_W, THUMB_H), interpolation=cv2.INTER_AREA)
    colour_first = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(int)
    assert np.abs(gate._grey.astype(int) - colour_first).max() <= 1


def test_static_frames_are_skipped_until_the_scene_changes_or_max_skip_passes() -> None:
    gate = MotionGate(threshold=3.0, max_skip_seconds=10.0)
    still = frame(100)
    assert not gate.static(still, 0.0)  # the first frame becomes the reference
    assert gate.static(frame(100, seed=0), 1.0)
    assert gate.static(np.clip(still.astype(int) + 1, 0, 255).astype(np.uint8), 2.0)
    assert not gate.static(frame(140), 3.0)  # a change: classified, the new reference
    assert gate.static(frame(140), 4.0)
    assert not gate.static(frame(140), 13.5)  # max_skip_seconds since the reference


def test_a_new_frame_size_is_handled() -> None:
    gate = MotionGate(threshold=3.0, max_skip_seconds=10.0)
    assert not gate.static(frame(100), 0.0)
    small = cv2.resize(frame(100), (320, 240), interpolation=cv2.INTER_AREA)
    assert gate.static(small, 1.0)
