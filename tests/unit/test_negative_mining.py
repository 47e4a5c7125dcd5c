"""Which of a frame's crops are candidate negatives: the choice alone, on hand-set tracks."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from edge_agent.config import CameraConfig
from edge_agent.regions.analyzer import RegionAnalyzer
from edge_agent.regions.mining import background_box, distractor_crops
from edge_agent.regions.tracker import Track
from edge_agent.regions.votes import Votes

LABELS = ["cat", "dog", "other"]


def test_rejected_crops_and_confirmed_non_animal_tracks_are_offered_animals_never() -> None:
    analyzer = RegionAnalyzer(CameraConfig(camera_id="lawn", source="x"),
                              lambda *_a, **_k: None, frozenset(), 0.6)
    analyzer.tracker.background = frozenset({"other"})
    boxes = [(0.0, 0.0, 10.0, 10.0), (20.0, 0.0, 30.0, 10.0), (40.0, 0.0, 50.0, 10.0),
             (60.0, 0.0, 70.0, 10.0), (80.0, 0.0, 90.0, 10.0), (0.0, 50.0, 9.0, 59.0)]
    person = Track(1, boxes[0], 0.0, 1.0, hits=5, confirmed=True, votes=Votes({"other": 3.0}, 3))
    shadow = Track(2, boxes[1], 0.0, 1.0, hits=5, confirmed=True)  # every crop abstained
    dog = Track(3, boxes[2], 0.0, 1.0, hits=5, confirmed=True, votes=Votes({"dog": 4.0}, 4))
    new = Track(4, boxes[3], 1.0, 1.0, hits=1)  # tentative: not known yet
    ball = Track(5, boxes[4], 1.0, 1.0, hits=1)  # tentative, but the model says other
    analyzer.tracker.tracks = [person, shadow, dog, new, ball]
    analyzer.boxes = boxes  # the last one is a part inside another track: no track holds it
    # Crop tops: person other, shadow cat (abstaining), dog other (a wrong crop of an
    # animal's track), new cat, ball other, the part other.
    results: Any = SimpleNamespace(tops=[2, 0, 2, 0, 2, 2])
    runtime: Any = SimpleNamespace(labels=LABELS)
    assert distractor_crops(analyzer, runtime, results) == [
        (0, "rejected"), (1, "track"), (4, "rejected")]


def test_background_squares_lie_in_the_frame() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        x0, y0, x1, y1 = background_box(rng, 640, 480)
        assert 0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 480
        assert abs((x1 - x0) - (y1 - y0)) < 1e-9 and 0.05 * 640 - 1e-9 <= x1 - x0 <= 0.4 * 640
