"""Rain's streaks come out of a region's crop, for the trainer and the agent alike, and
nothing else does: the park clips' own camera (``trainer.synth.conditions``) films them."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_agent.regions.crops import CropCutter
from protocols import CropSpec, InputSpec, ReleaseManifest
from protocols.destreak import opened, streaked
from trainer import TrainerError, load_settings
from trainer.crops import FRAME, backdrops, cut_crop
from trainer.stages.train import region_crop_spec, region_crops
from trainer.synth.conditions import CameraLook, spans_for
from trainer.synth.shifts import rain_streaks

CONDITIONS = ("day", "dusk", "night", "ir", "rain")
SPAN = 20  # frames per condition
RAIN = CropSpec(destreak=3)  # a release that opens rain's streaks out of its crops
BOXES = [(100.0, 120.0, 180.0, 170.0), (300.0, 200.0, 420.0, 330.0), (20.0, 300.0, 60.0, 330.0)]


def filmed(condition: str, seed: int = 3) -> np.ndarray:
    """An empty park through the clips' camera under ``condition`` (severity 0.8)."""
    look = CameraLook(spans_for(CONDITIONS, 0.8, SPAN * len(CONDITIONS)), *FRAME, 10.0, seed)
    k = CONDITIONS.index(condition) * SPAN + SPAN // 2
    return look.apply(backdrops(seed)[0].copy(), k, np.random.default_rng([seed, k]))


@pytest.mark.parametrize("condition", CONDITIONS)
def test_only_rain_squares_are_streaked(condition: str) -> None:
    frame = filmed(condition)
    for x0, y0, x1, y1 in BOXES:
        square = frame[round(y0):round(y1), round(x0):round(x1)]
        assert streaked(square, RAIN.destreak) == (condition == "rain")


@pytest.mark.parametrize("condition", ["day", "dusk", "night", "ir"])
def test_crops_without_rain_are_cut_as_before(condition: str) -> None:
    frame = filmed(condition)
    for box in BOXES:
        assert np.array_equal(cut_crop(frame, box, RAIN, (64, 64)),
                              cut_crop(frame, box, CropSpec(), (64, 64)))


def test_a_rain_crop_is_the_park_behind_the_streaks() -> None:
    # The renderer's rain: its streak layer added (saturating) onto the hazy park.
    park = backdrops(5)[1]
    layer = rain_streaks(np.random.default_rng(1), FRAME[1], FRAME[0], 0.8)
    bright = np.repeat(np.rint(layer * 200).astype(np.uint8)[..., None], 3, axis=2)
    rain = cv2.add(park, bright)
    # The opening smooths the park's own finest bright texture too (the lawn's grain),
    # by day as in rain: what is left to compare is the park opened alike.
    smoothed = opened(park, RAIN.destreak)
    for box in BOXES:
        raw = np.abs(cut_crop(rain, box, CropSpec(), (64, 64))
                     - cut_crop(park, box, CropSpec(), (64, 64)).astype(float)).mean()
        cleaned = np.abs(cut_crop(rain, box, RAIN, (64, 64))
                         - cut_crop(smoothed, box, CropSpec(), (64, 64)).astype(float)).mean()
        assert raw > 8 and cleaned < raw / 4, (box, raw, cleaned)  # streaks side by side stay


@pytest.mark.parametrize("box", [*BOXES, (-20.0, 300.0, 60.0, 470.0), (600.0, 10.0, 660.0, 40.0)])
def test_the_agent_destreaks_the_trainers_pixels(box: tuple[float, float, float, float]) -> None:
    frame = filmed("rain")
    agent = CropCutter(48, 48, RAIN, 4).cut(frame, [box])[0]
    ours = cut_crop(frame, box, RAIN, (48, 48))
    assert np.array_equal(ours, agent)
    assert not np.array_equal(ours, cut_crop(frame, box, CropSpec(), (48, 48)))


def test_a_release_without_destreak_keeps_the_previous_wire() -> None:
    # Agents of the previous version forbid unknown keys: the field is left out at 0.
    assert "destreak" not in CropSpec().model_dump_json()
    assert '"destreak":3' in RAIN.model_dump_json()
    fields = ReleaseManifest.model_fields["crops"]
    assert fields.default == CropSpec()


def test_a_trainer_setting_cuts_every_regions_crop_as_the_release_says() -> None:
    """``region_destreak`` reaches the training and validation crops and the release's
    crop spec, and their features are cached apart from crops cut without it."""
    spec = InputSpec(width=32, height=32)
    labels = ["cat", "dog", "other"]
    plain = load_settings(None, data_dir="/d", arch="lite0", regions=True)
    rain = load_settings(None, data_dir="/d", arch="lite0", regions=True, region_destreak=3)
    assert region_crop_spec(plain) == CropSpec()  # the default: crops cut as before
    assert region_crop_spec(rain) == RAIN
    assert rain.hyperparameters()["region_destreak"] == 3
    for before, after in zip(region_crops(plain, labels, spec, [], []),
                             region_crops(rain, labels, spec, [], []), strict=True):
        assert (before.crop_spec, after.crop_spec) == (CropSpec(), RAIN)
        assert before.recipe != after.recipe


def test_a_destreak_setting_out_of_range_names_the_key() -> None:
    with pytest.raises(TrainerError, match="region_destreak"):
        load_settings(None, data_dir="/d", arch="lite0", regions=True, region_destreak=40)
