"""Regions mode on real video: clips written as MJPG, decoded by OpenCV, crops classified by
ONNX Runtime, tracked; the analyzer is driven frame by frame at the clip's own clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_agent.config import CameraConfig
from edge_agent.regions.analyzer import RegionAnalyzer
from edge_agent.regions.boxes import Box
from edge_agent.runtime import ModelRuntime
from tests.region_kit import (
    BLUE,
    GREEN,
    RED,
    Thing,
    build_colour_model,
    colour_manifest,
    crossing,
    read_clip,
    resting,
    write_clip,
)

FPS = 10.0


@dataclass
class Run:
    boxes: list[list[Box]] = field(default_factory=list)  # classified, per frame
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    window: dict[str, object] = field(default_factory=dict)
    tracks: list[dict[int, str | None]] = field(default_factory=list)  # confirmed, per frame
    analyzer: RegionAnalyzer | None = None

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [f for k, f in self.events if k == kind]


def analyse(tmp: Path, things: list[Thing], n: int, **camera: Any) -> Run:
    model = tmp / "colour.onnx"
    model.write_bytes(build_colour_model())
    runtime = ModelRuntime(model, colour_manifest(build_colour_model()), 1)
    run = Run()
    analyzer = RegionAnalyzer(
        CameraConfig(camera_id="lawn", source="clip.avi", sample_fps=FPS, **camera),
        lambda kind, **fields: run.events.append((kind, fields)), frozenset(), 0.6)
    for i, image in enumerate(read_clip(write_clip(tmp / "clip.avi", things, n, FPS))):
        analyzer.analyse(image, i / FPS, runtime)
        run.boxes.append(list(analyzer.boxes))
        run.tracks.append({t.track_id: t.label for t in analyzer.tracker.tracks
                           if t.confirmed})
    run.window = analyzer.close_window()
    run.analyzer = analyzer
    return run


def covers(boxes: list[Box], point: tuple[float, float] | None) -> bool:
    return point is not None and any(b[0] <= point[0] <= b[2] and b[1] <= point[1] <= b[3]
                                     for b in boxes)


CAT = Thing(RED, (40, 30), crossing(20, 60, 20, 300, 45))
PERSON = Thing(GREEN, (20, 60), crossing(20, 60, 40, 280, 125))
DOG = Thing(BLUE, (50, 36), crossing(25, 70, 300, 30, 200))


def test_moving_animals_get_one_track_each_and_a_person_is_never_an_animal(
        tmp_path: Path) -> None:
    # No wait to be found again: the cat's animal_left goes out within the clip.
    run = analyse(tmp_path, [CAT, PERSON, DOG], 100, track_reid_seconds=0.0)
    assert all(b == [] for b in run.boxes[:20]), "no regions on the still lawn"
    for i in range(27, 58):  # every moving thing is in a classified region
        for thing in (CAT, PERSON, DOG):
            assert covers(run.boxes[i], thing.at(i)), (i, thing.colour, run.boxes[i])
    animal_ids = {tid: label for frame in run.tracks for tid, label in frame.items()
                  if label in ("cat", "dog")}
    assert sorted(animal_ids.values()) == ["cat", "dog"], "one track per animal, stable ids"
    appeared, left = run.of("animal_appeared"), run.of("animal_left")
    assert sorted(e["label"] for e in appeared) == ["cat", "dog"]
    assert sorted(e["track_id"] for e in appeared) == sorted(animal_ids)
    assert run.window["animals"] == {"cat": 1, "dog": 1}
    cat_left = next(e for e in left if e["label"] == "cat")
    assert 3.0 <= cat_left["dwell_seconds"] <= 4.0  # in view 4 s; confirmed after 3 frames
    xs = [p[0] for p in cat_left["path"]]
    assert xs == sorted(xs) and xs[-1] - xs[0] > 0.6 and len(xs) <= 32
    assert all(e["confidence"] > 0.9 for e in appeared + left)
    per_frame = run.window["regions_per_frame"]
    assert sum(per_frame) == 100  # type: ignore[arg-type]
    assert run.window["frames_without_animal"] >= 20  # type: ignore[operator]


def test_a_still_scene_and_a_moving_shadow_have_no_regions(tmp_path: Path) -> None:
    shadow = Thing((0, 0, 0), (60, 40), crossing(10, 60, 20, 300, 120), shade=0.6)
    run = analyse(tmp_path, [shadow], 60)
    assert sum(len(b) for b in run.boxes) <= 2, run.boxes
    assert run.events == [] and run.window["animals"] == {}
    assert run.window["frames_without_animal"] == 60


def test_a_resting_animal_keeps_its_track_until_it_walks_off(tmp_path: Path) -> None:
    # A background model that forgets in 1 s: the dog is part of the lawn soon after it
    # lies down, and only the crop at its track's last box still sees it.
    dog = Thing(BLUE, (50, 36), resting((10, 30), 90, 110, 300, 160, 20, 150))
    run = analyse(tmp_path, [dog], 140, region_absorb_seconds=1.0, track_reid_seconds=0.0)
    assert any(b == [] or len(b) == 1 for b in run.boxes[50:85])
    ids = {tid for frame in run.tracks[15:100] for tid, label in frame.items()
           if label == "dog"}
    assert len(ids) == 1, run.tracks[15:100]
    appeared, left = run.of("animal_appeared"), run.of("animal_left")
    assert [e["track_id"] for e in appeared] == [ids.pop()]
    assert [e["track_id"] for e in left] == [appeared[0]["track_id"]]
    assert 9.0 <= left[0]["dwell_seconds"] <= 10.5  # frames 12-110: walked, rested, left
    assert run.window["animals"] == {"dog": 1}
    assert np.argmax(run.window["animal_heatmap"]) // 16 == int(150 / 240 * 12)  # type: ignore[operator,arg-type]


@pytest.mark.parametrize("subtractor", ["mog2", "knn"])
def test_both_background_models_find_the_animals(tmp_path: Path, subtractor: str) -> None:
    run = analyse(tmp_path, [CAT, DOG], 80, region_subtractor=subtractor)
    assert sorted(e["label"] for e in run.of("animal_appeared")) == ["cat", "dog"]


def test_tracks_alive_when_the_camera_stops_leave_with_their_dwell_so_far(
        tmp_path: Path) -> None:
    run = analyse(tmp_path, [CAT, PERSON, DOG], 50)  # all three still in view at frame 49
    assert run.analyzer is not None
    counts = run.analyzer.counts
    assert run.of("animal_left") == [] and counts.live_animals == 2
    assert counts.live_tracks >= 3  # the person's track too
    assert counts.proposed >= counts.classified - 2 * 25 > 0  # probes: at most 2 a frame
    assert counts.classified == sum(len(b) for b in run.boxes)
    assert 0 < counts.rejected < counts.classified  # the person's crops: "other"
    run.analyzer.stop()
    left = {e["label"]: e for e in run.of("animal_left")}
    appeared = {e["label"]: e["track_id"] for e in run.of("animal_appeared")}
    assert {k: e["track_id"] for k, e in left.items()} == appeared == {
        "cat": appeared["cat"], "dog": appeared["dog"]}
    assert 2.6 <= left["cat"]["dwell_seconds"] <= 2.95  # seen from frame 20-23 to 49
    assert 2.1 <= left["dog"]["dwell_seconds"] <= 2.45  # from frame 25-28
    assert (counts.live_tracks, counts.live_animals) == (0, 0)
    assert run.analyzer.tracker.tracks == []


@pytest.mark.parametrize("neck", [None, 0.6])
def test_a_cat_and_a_dog_walking_in_together_are_counted_as_two(tmp_path: Path,
                                                                 neck: float | None) -> None:
    # Side by side from the first frame to the last: one moving blob all the way, which
    # only the split into bodies makes two crops (None: the default, which never splits;
    # the one crop of both reads neither a sure cat nor a sure dog).
    cat = Thing(RED, (44, 34), crossing(40, 100, 30, 250, 120))
    dog = Thing(BLUE, (48, 36), crossing(40, 100, 70, 290, 128))
    run = analyse(tmp_path, [cat, dog], 110, **({} if neck is None else
                                                {"region_split_neck": neck}))
    together = [len(b) for b in run.boxes[40:100]]
    if neck is None:
        assert max(together) == 1 and run.window["animals"] != {"cat": 1, "dog": 1}
        return
    assert sum(n >= 2 for n in together) >= 30, together
    assert run.window["animals"] == {"cat": 1, "dog": 1}
    assert sorted(e["label"] for e in run.of("animal_appeared")) == ["cat", "dog"]


def test_an_animal_whose_outline_grows_a_second_bulge_is_still_one_animal(
        tmp_path: Path) -> None:
    # A dog walks alone; halfway across its head comes up in front of its body, joined by
    # a narrow neck: to the split, the same waist as two animals side by side. It was
    # tracked as one animal before, so the parts stay one region, one track, one count.
    body = crossing(10, 70, 20, 260, 130)

    def head(i: int) -> tuple[float, float] | None:
        at = body(i)
        return None if at is None or i < 35 else (at[0] + 58, at[1] - 4)

    dog = [Thing(BLUE, (64, 48), body), Thing(BLUE, (52, 40), head)]
    run = analyse(tmp_path, dog, 80, region_split_neck=0.6)
    assert all(run.boxes[i] for i in range(35, 65)), "the dog is in view"
    assert run.window["animals"] == {"dog": 1}, run.tracks[35:70]
    assert [e["label"] for e in run.of("animal_appeared")] == ["dog"]
