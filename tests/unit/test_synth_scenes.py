"""The park scene composer: determinism, exact boxes, sizes, schedule, distractors, light."""

from __future__ import annotations

import subprocess
import sys
from itertools import pairwise

import cv2
import numpy as np
import pytest

from trainer.synth import DISTRACTOR_LABELS, Scene, SceneSpec, Schedule, scene_truth

MAGENTA = (255, 0, 255)


def _bare(**kw: object) -> SceneSpec:
    """A scene with nothing but its objects: flat background, no camera effects."""
    base: dict[str, object] = {"width": 160, "height": 120, "flat_background": MAGENTA,
                               "noise": False, "light_drift": False, "shake": False,
                               "timestamp": False}
    return SceneSpec(**{**base, **kw})  # type: ignore[arg-type]


def test_same_seed_same_frames_any_order_and_another_seed_differs() -> None:
    spec = SceneSpec(width=160, height=120, seconds=6, seed=5,
                     schedule=Schedule(empty_share=0.1, animals_per_minute=20,
                                       distractors_per_minute=20))
    a, b = list(Scene(spec).frames()), list(Scene(spec).frames())
    assert all(np.array_equal(x.image, y.image) and x.objects == y.objects
               for x, y in zip(a, b, strict=True))
    again = Scene(spec)
    assert np.array_equal(again.render(40).image, a[40].image)  # random access = sequential
    assert any(f.objects for f in a)
    other = list(Scene(SceneSpec(width=160, height=120, seconds=6, seed=6)).frames())
    assert not np.array_equal(other[30].image, a[30].image)
    assert all(not np.array_equal(x.image, y.image) for x, y in pairwise(a[:10]))  # noise


def test_boxes_are_where_the_animal_pixels_are() -> None:
    spec = _bare(seconds=20, seed=3, schedule=Schedule(empty_share=0.2, animals_per_minute=3,
                                                       distractors_per_minute=0, max_group=1))
    checked = 0
    for frame in Scene(spec).frames():
        if len(frame.objects) != 1 or frame.objects[0].visible_fraction < 1.0:
            continue
        changed = np.abs(frame.image.astype(int) - MAGENTA).max(axis=2) > 40
        ys, xs = np.nonzero(changed)
        x, y, w, h = frame.objects[0].box
        # Feathered edges (matte < 0.5) may add a pixel around the box, never more.
        assert abs(xs.min() - x) <= 1 and abs(ys.min() - y) <= 1
        assert abs(xs.max() - (x + w - 1)) <= 1 and abs(ys.max() - (y + h - 1)) <= 1
        checked += 1
    assert checked > 20


def test_partly_hidden_animals_have_smaller_boxes_and_fractions() -> None:
    truth = scene_truth(_bare(width=320, height=240, seconds=120, seed=2))
    fractions = [o.visible_fraction for k in range(truth.frame_count)
                 for o in truth.objects(k, "animal")]
    assert min(fractions) < 0.3 and max(fractions) == 1.0  # entering from beyond an edge
    for k in range(truth.frame_count):
        for o in truth.objects(k):
            x, y, w, h = o.box
            assert x >= 0 and y >= 0 and x + w <= 320 and y + h <= 240 and w > 0 and h > 0


def test_animals_are_5_to_40_percent_of_the_width() -> None:
    truth = scene_truth(SceneSpec(width=320, height=240, seconds=600, seed=1, shake=False))
    widths = [o.box[2] / truth.width for k in range(truth.frame_count)
              for o in truth.objects(k, "animal") if o.visible_fraction == 1.0]
    assert len(widths) > 500
    assert min(widths) >= 0.05 - 2 / 320 and max(widths) <= 0.40 + 1 / 320
    assert min(widths) < 0.1 and max(widths) > 0.25  # far and near, not one size


@pytest.mark.parametrize("empty", [0.3, 0.7])
def test_empty_time_follows_the_schedule(empty: float) -> None:
    truth = scene_truth(SceneSpec(width=320, height=240, seconds=600, seed=4,
                                  schedule=Schedule(empty_share=empty)))
    assert empty - 0.02 <= truth.empty_share() <= empty + 0.08
    longest = max(b - a for a, b in truth.empty_stretches())
    assert longest >= 20 * truth.fps  # long empty stretches, not a flicker
    animals = [t for t in truth.tracks if t.kind == "animal"]
    assert len(animals) == 30 and all(truth.track_boxes(t.track_id) for t in animals)


def test_distractors_are_there_and_never_animals() -> None:
    truth = scene_truth(SceneSpec(width=320, height=240, seconds=300, seed=7,
                                  schedule=Schedule(animals_per_minute=0,
                                                    distractors_per_minute=6)))
    labels = {o.label for k in range(truth.frame_count) for o in truth.objects(k)}
    assert labels == set(DISTRACTOR_LABELS)
    assert all(o.kind == "distractor" for k in range(truth.frame_count)
               for o in truth.objects(k))
    assert truth.frames_without_animals() == list(range(truth.frame_count))
    assert truth.distractor_only_stretches(min_frames=20)


def test_animals_rest_overlap_and_keep_their_ids() -> None:
    truth = scene_truth(SceneSpec(width=320, height=240, seconds=600, seed=8, shake=False,
                                  schedule=Schedule(empty_share=0.3, animals_per_minute=4)))
    still = 0
    for t in truth.tracks:
        boxes = truth.track_boxes(t.track_id)
        run = 0
        for k in sorted(boxes):
            run = run + 1 if boxes.get(k - 1) == boxes[k] else 0
            still = max(still, run)
    assert still >= 3 * truth.fps  # a resting animal: the same box for seconds

    def overlap(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
        return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] \
            and b[1] < a[1] + a[3]
    assert any(overlap(p.box, q.box) for k in range(truth.frame_count)
               for i, p in enumerate(truth.objects(k, "animal"))
               for q in truth.objects(k, "animal")[i + 1:])


def _luma(img: np.ndarray) -> float:
    return float(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).mean())


def test_day_falls_to_dusk_and_night_and_ir_is_grey() -> None:
    spec = SceneSpec(width=160, height=120, seconds=30, seed=3,
                     conditions=("day", "dusk", "night"), timestamp=False)
    scene = Scene(spec)
    day, dusk, night = (scene.render(k) for k in (80, 180, 290))
    assert (day.condition, dusk.condition, night.condition) == ("day", "dusk", "night")
    assert _luma(day.image) > 1.2 * _luma(dusk.image) > 1.2 * _luma(night.image)
    fading = [_luma(scene.render(k).image) for k in (100, 110, 120)]  # dusk falls, no switch
    assert fading[0] > fading[1] > fading[2] and fading[0] - fading[2] < 0.5 * fading[0]
    ir = Scene(SceneSpec(width=160, height=120, seconds=2, conditions=("ir",),
                         noise=False)).render(5).image
    assert np.ptp(ir.astype(int), axis=2).max() == 0


def test_rain_adds_falling_streaks() -> None:
    spec = SceneSpec(width=160, height=120, seconds=4, seed=2, conditions=("rain",),
                     noise=False, timestamp=False, schedule=Schedule(animals_per_minute=0,
                                                                     distractors_per_minute=0))
    dry = SceneSpec(**{**spec.__dict__, "conditions": ("day",)})
    wet, clear = Scene(spec), Scene(dry)
    a, b = wet.render(10).image.astype(int), wet.render(11).image.astype(int)
    streaks = (a - clear.render(10).image.astype(int)).max(axis=2) > 60
    assert 0.002 < streaks.mean() < 0.3
    assert not np.array_equal(a, b)  # the streaks move between frames


@pytest.mark.parametrize(("kw", "says"), [
    ({"width": 10}, "frame size"),
    ({"height": 5000}, "frame size"),
    ({"conditions": ("fog",)}, "unknown condition 'fog'"),
    ({"labels": ("horse",)}, "labels must be"),
    ({"severity": 2.0}, "severity"),
    ({"fps": 0}, "fps"),
    ({"photo_start": -1}, "photo_start must be >= 0"),
])
def test_bad_specs_say_what_is_wrong(kw: dict[str, object], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        SceneSpec(**kw)  # type: ignore[arg-type]


def test_any_frame_size_works() -> None:
    frame = Scene(SceneSpec(width=333, height=77, seconds=1)).render(3)
    assert frame.image.shape == (77, 333, 3)


def test_importing_the_package_pulls_no_torch() -> None:
    code = ("import sys, trainer.synth, trainer.synth.scenes; "
            "print('torch' in sys.modules, 'edge_agent' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout.split()
    assert out == ["False", "False"]


def test_the_clock_box_holds_every_changed_clock_pixel() -> None:
    spec = _bare(seconds=3, schedule=Schedule(animals_per_minute=0, distractors_per_minute=0),
                 timestamp=True)
    scene = Scene(spec)
    x, y, w, h = scene.truth([[] for _ in range(scene.frame_count)]).clock_box or (0, 0, 0, 0)
    for k in (0, 12, 25):
        changed = np.abs(scene.render(k).image.astype(int) - MAGENTA).max(axis=2) > 0
        ys, xs = np.nonzero(changed)
        assert len(xs) and xs.min() >= x and ys.min() >= y
        assert xs.max() < x + w and ys.max() < y + h
