"""The parkwatch-scene/1 sidecar: visibility rules, the schedule plan, questions, files."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from trainer.synth.groundtruth import ConditionSpan, SceneTruth, Track
from trainer.synth.scenes import visible_rows
from trainer.synth.timeline import AnimalSlot, Schedule, plan_animals, plan_distractors


def _square(size: int, value: float = 1.0) -> np.ndarray:
    return np.full((size, size), value, np.float32)


def test_visible_rows_clip_to_the_frame_and_hide_what_is_behind() -> None:
    far, near = _square(20), _square(10)
    cover = np.zeros((50, 80), bool)
    cover[40:, :] = True  # a bush along the bottom
    items = [(1, 10, 10, far, 400), (2, 20, 15, near, 100),  # 2 covers the middle of 1
             (3, 70, 30, _square(20), 400),  # half out on the right, its bottom in the bush
             (4, 200, 10, _square(5), 25),  # out of the frame
             (5, 5, 5, _square(4, 0.4), 16)]  # a matte below 0.5 is not the object's
    rows = visible_rows(items, cover, 80, 50)
    assert rows == [(1, 10, 10, 20, 20, 0.75), (2, 20, 15, 10, 10, 1.0),
                    (3, 70, 30, 10, 10, 0.25)]


def test_a_fully_hidden_object_is_not_listed() -> None:
    rows = visible_rows([(1, 10, 10, _square(5), 25), (2, 8, 8, _square(10), 100)], None, 40, 40)
    assert [r[0] for r in rows] == [2]


def _busy_share(slots: list[AnimalSlot], n: int) -> float:
    busy = np.zeros(n, bool)
    for s in slots:
        busy[max(0, s.start):min(n, s.end)] = True
    return float(busy.mean())


@pytest.mark.parametrize("empty", [0.2, 0.5, 0.8])
def test_the_plan_keeps_the_empty_share_and_the_animal_rate(empty: float) -> None:
    n, fps = 6000, 10.0  # ten minutes
    slots = plan_animals(n, fps, Schedule(empty_share=empty, animals_per_minute=3.0),
                         np.random.default_rng(0))
    assert len(slots) == 30
    assert abs(_busy_share(slots, n) - (1 - empty)) < 0.02
    for i, s in enumerate(slots):
        assert 0 <= s.start < s.end <= n
        if s.leader is not None:  # a follower trails an earlier leader by its lag
            leader = slots[s.leader]
            assert s.leader < i and s.start == leader.start + s.lag and s.lag > 0


def test_no_animals_means_no_slots_and_distractors_keep_their_rate() -> None:
    rng = np.random.default_rng(1)
    assert plan_animals(600, 10, Schedule(animals_per_minute=0), rng) == []
    assert plan_animals(600, 10, Schedule(empty_share=1.0), rng) == []
    slots = plan_distractors(6000, 10, Schedule(distractors_per_minute=4), rng)
    assert len(slots) == 40 and {s.kind for s in slots} == {"person", "ball", "leaves", "shadow"}


def _truth() -> SceneTruth:
    tracks = [Track(track_id=1, kind="animal", label="cat", source="cartoon", start_frame=0,
                    end_frame=6),
              Track(track_id=2, kind="animal", label="dog", source="photo", photo="dog/a.jpg",
                    photo_sha256="ab" * 32, cutout="grabcut", start_frame=2, end_frame=8),
              Track(track_id=3, kind="distractor", label="ball", source="drawn",
                    start_frame=5, end_frame=10)]
    rows: list[list[tuple[int, int, int, int, int, float]]] = [
        [], [(1, 0, 0, 5, 5, 0.2)], [(1, 1, 0, 5, 5, 1.0)], [(1, 2, 0, 5, 5, 1.0),
        (2, 3, 3, 6, 6, 0.5)], [(2, 4, 3, 6, 6, 1.0)], [], [(3, 9, 9, 2, 2, 1.0)],
        [(3, 8, 9, 2, 2, 1.0)], [], [(3, 7, 9, 2, 2, 1.0)]]
    return SceneTruth(fps=2.0, width=20, height=20, frame_count=10, seed=0, camera="CAM-00",
                      start_time=dt.datetime(2024, 6, 1), schedule=Schedule(),
                      conditions=[ConditionSpan(condition="day", severity=0, start_frame=0,
                                                end_frame=5),
                                  ConditionSpan(condition="night", severity=0.8,
                                                start_frame=5, end_frame=10)],
                      tracks=tracks, frames=rows)


def test_counts_tracks_and_stretches() -> None:
    t = _truth()
    assert t.windows(2.0) == [(0, 4), (4, 8), (8, 10)]
    assert [t.animal_counts(a, b) for a, b in t.windows(2.0)] == [
        {"cat": 1, "dog": 1}, {"cat": 0, "dog": 1}, {"cat": 0, "dog": 0}]
    assert t.animal_counts(0, 2, min_visible=0.5) == {"cat": 0, "dog": 0}
    assert t.track_boxes(2) == {3: (3, 3, 6, 6), 4: (4, 3, 6, 6)}
    assert t.frames_without_animals() == [0, 5, 6, 7, 8, 9]
    assert t.empty_stretches() == [(0, 1), (5, 10)]
    assert t.empty_stretches(min_frames=2) == [(5, 10)]
    assert t.distractor_only_stretches() == [(6, 8), (9, 10)]
    assert t.empty_share() == 0.6
    assert [o.label for o in t.objects(3)] == ["cat", "dog"]
    assert t.objects(6, kind="animal") == [] and t.objects(6)[0].kind == "distractor"
    assert (t.condition_at(4), t.condition_at(5)) == ("day", "night")
    with pytest.raises(KeyError):
        t.track_boxes(99)


def test_sidecar_round_trip_is_exact_and_atomic(tmp_path: Path) -> None:
    t = _truth()
    path = tmp_path / "clip.json"
    t.save(path)
    assert SceneTruth.load(path) == t
    assert json.loads(path.read_text())["format"] == "parkwatch-scene/1"
    assert [p.name for p in tmp_path.iterdir()] == ["clip.json"]  # no temp file left over


@pytest.mark.parametrize(("content", "says"), [
    ('{"fps": 10, "frame_count": 3, "width": 8, "height": 8, "segments": []}', "format"),
    ("not json", "parkwatch-scene/1 sidecar"),
])
def test_loading_something_else_names_the_problem(tmp_path: Path, content: str,
                                                   says: str) -> None:
    path = tmp_path / "old.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=says) as err:
        SceneTruth.load(path)
    assert "\n" not in str(err.value) and "park_clip.py" in str(err.value)
    with pytest.raises(ValueError, match="cannot read"):
        SceneTruth.load(tmp_path / "missing.json")


def test_rows_must_name_known_tracks_and_labels_must_fit_kinds() -> None:
    data = _truth().model_dump()
    data["frames"][0] = [(7, 0, 0, 1, 1, 1.0)]
    with pytest.raises(ValueError, match="unknown track ids"):
        SceneTruth.model_validate(data)
    with pytest.raises(ValueError, match="is no animal"):
        Track(track_id=1, kind="animal", label="ball", source="drawn", start_frame=0,
              end_frame=1)
