"""Moving regions (``regions/proposals.py``) on real MJPG video: the small copy the
background model sees, the cleanup's size, parts of one object joined into one box, and
the light and rain streaks the condition rule reads."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent.config import CameraConfig
from edge_agent.regions.analyzer import RegionAnalyzer
from edge_agent.regions.condition import CONDITIONS, condition_of
from edge_agent.regions.proposals import MotionRegions
from edge_agent.runtime import ModelRuntime
from protocols.messages import BACKGROUND_COLS, BACKGROUND_ROWS
from tests.region_kit import (
    RED,
    Thing,
    build_colour_model,
    colour_manifest,
    crossing,
    frames,
    lawn,
    read_clip,
    write_clip,
)
from trainer.synth import Scene, SceneSpec
from trainer.synth.conditions import CameraLook, spans_for


def camera(**settings: object) -> CameraConfig:
    return CameraConfig(camera_id="lawn", source="clip.avi", sample_fps=10.0,
                        **settings)  # type: ignore[arg-type]


@pytest.mark.parametrize(("size", "small"), [((640, 480), (160, 120)),
                                             ((1920, 1080), (160, 90)),
                                             ((250, 170), (160, 109))])
def test_the_small_copy_is_one_area_resize_of_the_frame_within_one_level(
        size: tuple[int, int], small: tuple[int, int]) -> None:
    frame = lawn(*size)
    motion = MotionRegions(camera())
    motion(frame)
    expected = cv2.resize(frame, small, interpolation=cv2.INTER_AREA)
    assert motion._small.shape == (small[1], small[0], 3)
    assert np.abs(motion._small.astype(int) - expected).max() <= 1


def test_an_animal_three_percent_of_the_frame_wide_is_found_in_every_frame(
        tmp_path: Path) -> None:
    # 20 x 14 px on a 640 x 480 frame: 5 x 3.5 px at the default 160 px. A cleanup sized
    # for 320 px (two openings) lost it in 6 of these 38 frames.
    cat = Thing(RED, (20, 14), crossing(20, 60, 40, 600, 240))
    clip = read_clip(write_clip(tmp_path / "clip.avi", [cat], 60, size=(640, 480)))
    motion = MotionRegions(camera())
    found = []
    for i, image in enumerate(clip):
        boxes = motion(image)
        where = cat.at(i)
        if i >= 22 and where is not None:
            found.append(any(b[0] <= where[0] <= b[2] and b[1] <= where[1] <= b[3]
                             for b in boxes))
    assert len(found) == 38 and all(found), found


def _at_night(things: list[Thing], n: int, seed: int) -> list[np.ndarray]:
    """The lawn with ``things`` as the park renderer's camera films it at night: the dark
    tone curve, most colour gone, gain noise."""
    look = CameraLook(spans_for(("night",), 0.8, n), 640, 480, 10.0, seed=seed)
    return [look.apply(image, i, np.random.default_rng([seed, i]))
            for i, image in enumerate(frames(things, n, size=(640, 480), seed=seed))]


def test_the_night_s_noise_alone_is_no_region() -> None:
    motion = MotionRegions(camera())
    regions = [motion(image) for image in _at_night([], 300, seed=6)]
    assert regions[30:] == [[]] * 270


def test_a_part_inside_another_parts_hole_is_one_region(tmp_path: Path) -> None:
    # A ring (a dog seen from above, curled) with a ball moving in its hole: the outer
    # contour's box holds the inner part, as the components' boxes merged did.
    still = lawn(320, 240)
    motion = MotionRegions(camera(region_analysis_width=320))
    for _ in range(30):
        assert motion(still) == []
    ring = still.copy()
    cv2.circle(ring, (160, 120), 40, (200, 40, 40), 8)
    cv2.circle(ring, (160, 120), 8, (40, 40, 220), -1)
    boxes = motion(ring)
    assert len(boxes) == 1, boxes
    x0, y0, x1, y1 = boxes[0]
    assert x0 <= 120 and y0 <= 80 and x1 >= 200 and y1 >= 160


def test_the_light_is_the_condition_rule_s_brightness_and_saturation() -> None:
    rng = np.random.default_rng(4)
    frame = cv2.resize(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), (640, 480),
                       interpolation=cv2.INTER_NEAREST)
    frame[:40] = 0  # black: saturation 0 by the definition's max(max, 1)
    motion = MotionRegions(camera())
    motion(frame)
    brightness, saturation = motion.light()
    small = motion._small.astype(np.float64)
    assert brightness == pytest.approx((small @ [0.114, 0.587, 0.299]).mean(), abs=1e-6)
    thumb = cv2.resize(motion._small, (64, 48), interpolation=cv2.INTER_NEAREST)
    hi, lo = thumb.max(axis=2).astype(np.float64), thumb.min(axis=2)
    assert saturation == pytest.approx(((hi - lo) / np.maximum(hi, 1)).mean(), abs=1e-6)


def test_the_edge_layout_is_each_cells_share_and_moves_with_the_camera() -> None:
    frame = np.full((480, 640, 3), 90, np.uint8)
    cv2.rectangle(frame, (20, 20), (140, 140), (250, 250, 250), 4)  # top left cell only
    motion = MotionRegions(camera())
    assert motion.edge_layout() == [0] * 12  # no frame yet
    motion(frame)
    layout = motion.edge_layout()
    assert layout[0] == 100 and sum(layout) == 100
    # The same outline where a camera turned to the left sees it: two cells to the right.
    moved = np.roll(frame, 320, axis=1)
    motion(moved)
    assert motion.edge_layout()[2] == 100
    dark = (frame // 3).astype(np.uint8)  # dusk: weaker edges, the same layout
    motion(dark)
    assert motion.edge_layout()[0] == 100
    motion(np.full_like(frame, 90))
    assert motion.edge_layout() == [0] * 12  # no edges: nothing to share out



def test_the_background_edges_hold_the_view_not_the_animals_passing() -> None:
    # A fence and a path as outlines, an animal crossing in front of them: each frame's
    # edges follow the animal, the window's mean frame keeps the view, until it turns.
    scene = np.full((480, 640, 3), 90, np.uint8)
    cv2.rectangle(scene, (40, 300), (600, 330), (230, 230, 230), 3)
    cv2.line(scene, (100, 40), (300, 250), (20, 20, 20), 4)
    motion = MotionRegions(camera())
    assert motion.background_edges() == [0] * (BACKGROUND_COLS * BACKGROUND_ROWS)
    for _ in range(10):
        motion(scene)
    still = motion.background_edges()
    assert len(still) == BACKGROUND_COLS * BACKGROUND_ROWS and sum(still) > 0
    layouts = []
    for x in range(40, 560, 40):  # one animal, a frame at each place along its path
        frame = scene.copy()
        cv2.rectangle(frame, (x, 180), (x + 60, 230), (40, 40, 220), -1)
        motion(frame)
        layouts.append(tuple(motion.edge_layout()))
    assert len(set(layouts)) > 1  # the frame's edges moved with it
    passed = np.asarray(motion.background_edges())  # the window's mean did not, within
    assert np.abs(passed - still).sum() <= 0.02 * sum(still)  # a pixel of smear here and there
    turned = np.roll(scene, 160, axis=1)  # the camera turned: the view two cells right
    for _ in range(10):
        motion(turned)
    moved = np.reshape(motion.background_edges(), (BACKGROUND_ROWS, -1))
    was = np.reshape(still, (BACKGROUND_ROWS, -1))
    assert moved[:, 2:].tolist() == was[:, :-2].tolist() and moved.tolist() != was.tolist()
    assert motion.background_edges() == [0] * (BACKGROUND_COLS * BACKGROUND_ROWS)


def _park_clip(path: Path, condition: str, seed: int, lens: str = "clean") -> list[np.ndarray]:
    """Three frames of a rendered park scene through an MJPG file, as a camera sends them;
    a ``dirty`` lens blurs them under a grey veil, as the drift replay's dirty lens."""
    scene = Scene(SceneSpec(seconds=3, fps=1, seed=seed, conditions=(condition,)))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 1.0, (640, 480))
    assert writer.isOpened()
    for frame in scene.frames():
        image = frame.image
        if lens == "dirty":
            image = cv2.addWeighted(cv2.GaussianBlur(image, (0, 0), 3.0), 0.75,
                                    np.full_like(image, 150), 0.25, 0)
        writer.write(image)
    writer.release()
    return read_clip(path)


# Seeds 1 and 8 tilt their streaks the most of the first ten.
@pytest.mark.parametrize("seed", [1, 8])
def test_rain_reads_as_rain_and_dry_weather_or_a_dirty_lens_does_not(
        tmp_path: Path, seed: int) -> None:
    seen: dict[str, list[str]] = {}
    for case, condition, lens in [("rain", "rain", "clean"), ("dry", "day", "clean"),
                                  ("dirty lens", "day", "dirty"),
                                  ("dusk", "dusk", "clean"), ("night", "night", "clean")]:
        motion = MotionRegions(camera())
        seen[case] = []
        for image in _park_clip(tmp_path / f"{case}.avi", condition, seed, lens):
            motion(image)
            seen[case].append(condition_of(*motion.light(), motion.streaks()))
    assert seen == {"rain": ["rain"] * 3, "dry": ["day"] * 3, "dirty lens": ["day"] * 3,
                    "dusk": ["dusk"] * 3, "night": ["night"] * 3}, seen


@pytest.mark.parametrize(("rain_condition", "expected"), [(True, "rain"), (False, "day")])
def test_the_analyzer_tags_rain_unless_the_camera_says_not_to(
        tmp_path: Path, rain_condition: bool, expected: str) -> None:
    model = tmp_path / "colour.onnx"
    model.write_bytes(build_colour_model())
    runtime = ModelRuntime(model, colour_manifest(build_colour_model()), 1)
    analyzer = RegionAnalyzer(camera(rain_condition=rain_condition),
                              lambda *a, **kw: None, frozenset(), 0.6)
    seen = []
    for i, image in enumerate(_park_clip(tmp_path / "rain.avi", "rain", 1)):
        analyzer.analyse(image, float(i), runtime)
        seen.append(CONDITIONS[analyzer.condition_index])
    assert seen == [expected] * 3
