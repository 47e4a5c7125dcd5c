"""Pure region logic: boxes, merging, the square crop box, the condition rule, window bins."""

from __future__ import annotations

import numpy as np
import pytest

from edge_agent.regions.boxes import iou, merge_near, normalised, square_around
from edge_agent.regions.condition import (
    CONDITIONS,
    condition_counts,
    condition_index,
    condition_of,
    majority,
)
from edge_agent.regions.stats import RegionWindow
from protocols import CameraWindow
from protocols.messages import HEATMAP_COLS, REGION_WIDTH_EDGES, REGIONS_PER_FRAME_BINS


def test_iou() -> None:
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (10, 0, 20, 10)) == 0.0


def test_merge_joins_parts_within_the_distance_transitively() -> None:
    parts = [(0, 0, 10, 10), (13, 0, 20, 10), (100, 100, 110, 110), (22, 2, 30, 8)]
    assert sorted(merge_near(parts, 3.0)) == [(0, 0, 30, 10), (100, 100, 110, 110)]
    assert len(merge_near(parts, 1.0)) == 4
    # A union can reach a box neither part was near.
    assert merge_near([(0, 0, 10, 10), (0, 30, 10, 40), (12, 12, 20, 28)], 2.0) == [
        (0, 0, 20, 40)]


def test_square_with_context_on_the_longer_side() -> None:
    assert square_around((10, 20, 50, 40), 0.25) == (0, -0, 60, 60)
    assert square_around((0, 0, 10, 10), 0.0) == (0, 0, 10, 10)


def test_normalised_boxes_are_clipped_to_the_frame() -> None:
    assert normalised((-10, 20, 160, 240), 320, 240) == (0.0, 20 / 240, 0.5, 220 / 240)


@pytest.mark.parametrize(("brightness", "saturation", "streaks", "expected"), [
    (140, 0.45, 0.0, "day"), (80, 0.6, 0.0, "day"), (79.9, 0.6, 0.0, "dusk"),
    (45, 0.7, 0.0, "dusk"), (39, 0.9, 0.0, "night"), (5, 0.99, 0.0, "night"),
    (120, 0.06, 0.0, "ir"), (30, 0.1, 0.0, "ir"),
    (130, 0.3, 1.5, "rain"), (130, 0.3, 1.49, "day"),
    # Only daylight is tested for rain: dark frames' noise reads as streaks.
    (60, 0.5, 5.0, "dusk"), (30, 0.5, 5.0, "night"), (120, 0.05, 5.0, "ir"),
])
def test_the_condition_rule(brightness: float, saturation: float, streaks: float,
                            expected: str) -> None:
    assert condition_of(brightness, saturation, streaks) == expected


def test_one_frame_s_condition_is_the_rule_the_window_counts_with() -> None:
    brightness = [0, 39.9, 40, 79.9, 80, 200, float("nan")]
    saturation = [0, 0.149, 0.15, 0.5, float("nan")]
    streaks = [0.0, 1.49, 1.5, 9.0, float("nan")]
    triples = [(b, s, r) for b in brightness for s in saturation for r in streaks]
    indices = condition_index(*zip(*triples, strict=True)).tolist()
    assert [CONDITIONS.index(condition_of(*t)) for t in triples] == indices
    assert condition_index([200], [0.5]).tolist() == [0]  # no streaks measured: never rain


def test_the_window_condition_is_the_majority_of_its_frames() -> None:
    counts = condition_counts([150, 150, 20, 30, 35, 120], [0.5, 0.5, 0.8, 0.8, 0.8, 0.05])
    assert dict(zip(CONDITIONS, counts.tolist(), strict=True)) == {
        "day": 2, "dusk": 0, "night": 3, "ir": 1, "rain": 0}
    assert majority(counts) == "night"
    assert majority(np.zeros(4)) is None


def test_region_window_counts_and_bins_fit_the_wire() -> None:
    w = RegionWindow()
    w.add_frame([], [])
    w.add_frame([0.04, 0.12, 0.5], [(7, "dog", 0.99, 0.01), (9, "cat", 0.5, 0.5)])
    w.add_frame([0.12] * 12, [(7, "dog", 0.5, 0.5)])
    w.add_frame([0.3], [(9, "dog", 0.5, 0.5)], [50, 50] + [0] * 10)  # track 9's vote changed
    w.relabel(11, None)  # unknown tracks are ignored
    f = w.fields()
    assert f["regions_classified"] == 16
    assert f["regions_per_frame"] == [1, 1, 0, 1, 0, 0, 0, 0, 1]
    assert len(f["regions_per_frame"]) == REGIONS_PER_FRAME_BINS  # type: ignore[arg-type]
    assert f["region_width_hist"] == [1, 0, 13, 0, 1, 1, 0]
    assert len(f["region_width_hist"]) == len(REGION_WIDTH_EDGES) - 1  # type: ignore[arg-type]
    assert f["frames_without_animal"] == 1
    assert f["animals"] == {"dog": 2}  # distinct tracks, by their latest label
    heat = f["animal_heatmap"]
    assert heat[HEATMAP_COLS - 1] == 1 and heat[6 * HEATMAP_COLS + 8] == 3  # type: ignore[index]
    assert f["edge_layout"] == [50, 50] + [0] * 10  # summed over the frames that had one
    CameraWindow(camera_id="c", state="up", mode="regions", condition="day", **f)  # type: ignore[arg-type]
    w.relabel(9, None)
    assert w.fields()["animals"] == {"dog": 1}
    w.reset()
    assert w.fields()["regions_classified"] == 0 and w.fields()["animals"] == {}
