"""Training crops see the park camera's conditions: each one does what it stands for, is
the same for the same seed, and the crop recipe draws them at their shares."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from protocols import CropSpec, InputSpec
from trainer.crop_conditions import (
    OPTICS_MIX,
    SCENE_MIX,
    Look,
    apply_optics,
    chroma,
    draw_look,
    frame_in,
    high_frequency,
    jpeg,
    motion_blur,
)
from trainer.crop_set import CropSet
from trainer.crops import animal_crop, camera_look
from trainer.data import ImageRecord


def _texture(seed: int = 0) -> np.ndarray:
    """A colourful, detailed patch: fur-like noise over coloured blobs."""
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), (160, 120),
                     interpolation=cv2.INTER_CUBIC)
    grain = rng.integers(-40, 41, (120, 160, 1))
    return np.clip(img.astype(int) + grain, 0, 255).astype(np.uint8)


def _photo() -> np.ndarray:
    """A saturated orange cat-shaped blob on nothing (its matte is the blob)."""
    photo = np.zeros((120, 160, 3), np.uint8)
    cv2.ellipse(photo, (80, 60), (60, 40), 0, 0, 360, (20, 120, 240), -1)
    photo[::3, ::3] = (10, 60, 200)  # stripes: detail for blur and JPEG to remove
    return photo


def test_the_mixes_are_shares_and_lean_to_night_and_rain() -> None:
    assert sum(SCENE_MIX.values()) == pytest.approx(1.0)
    assert sum(OPTICS_MIX.values()) == pytest.approx(1.0)
    assert SCENE_MIX["night"] > SCENE_MIX["day"] and SCENE_MIX["rain"] > SCENE_MIX["day"]
    rng = np.random.default_rng(0)
    looks = Counter(draw_look(rng) for _ in range(4000))
    scenes = Counter[str]()
    optics = Counter[str]()
    for look, n in looks.items():
        scenes[look.scene] += n
        optics[look.optics] += n
    for name, p in SCENE_MIX.items():
        assert scenes[name] / 4000 == pytest.approx(p, abs=0.03)
    for name, p in OPTICS_MIX.items():
        assert optics[name] / 4000 == pytest.approx(p, abs=0.03)


@pytest.mark.parametrize("quality", [10, 30])
def test_jpeg_removes_fine_detail_and_is_deterministic(quality: int) -> None:
    img = _texture()
    out = jpeg(img, quality)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert high_frequency(out) < 0.8 * high_frequency(img)
    assert np.array_equal(out, jpeg(img, quality))
    assert np.abs(out.astype(int) - img).mean() < 40  # the picture, not noise


def test_harder_jpeg_removes_more() -> None:
    img = _texture(1)
    assert high_frequency(jpeg(img, 10)) < high_frequency(jpeg(img, 30))


def test_motion_blur_smears_along_its_direction() -> None:
    img = np.zeros((120, 160, 3), np.uint8)
    img[:, 78:82] = 255  # a vertical bar
    across = motion_blur(img, 0.7, 0.0)  # a horizontal streak widens the bar
    along = motion_blur(img, 0.7, 90.0)  # a vertical one leaves it about as wide
    width = [int((o[60, :, 0] > 20).sum()) for o in (across, along)]
    assert width[0] > 3 * width[1]
    # Sized in frame pixels: about 0.12 x 0.7 x 480 = 41 px, whatever the patch's size.
    assert 35 <= width[0] <= 50
    assert high_frequency(across) < 0.5 * high_frequency(img)


def test_optics_are_deterministic_with_a_seed() -> None:
    img = _texture(2)
    for optics in ("blur", "jpeg"):
        a = apply_optics(img, optics, np.random.default_rng(5))
        b = apply_optics(img, optics, np.random.default_rng(5))
        assert np.array_equal(a, b) and not np.array_equal(a, img)
    assert apply_optics(img, "clean", np.random.default_rng(5)) is img
    with pytest.raises(ValueError, match="unknown optics 'fog'"):
        apply_optics(img, "fog", np.random.default_rng(5))


def _crops(scene: str, n: int = 12) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [animal_crop(_photo(), CropSpec(), (64, 64), 0, rng, look=Look(scene, "clean"))
            for _ in range(n)]


def test_ir_crops_are_grey_and_night_crops_dark_and_washed_out() -> None:
    day, night, ir = _crops("day"), _crops("night"), _crops("ir")
    sat = {k: float(np.mean([chroma(c) for c in v]))
           for k, v in (("day", day), ("night", night), ("ir", ir))}
    assert sat["ir"] < 0.03 < 0.1 < sat["day"]  # grey, but for the sensor's colour noise
    assert sat["night"] < 0.5 * sat["day"]
    assert np.mean(night) < 0.7 * np.mean(day)
    assert all(np.array_equal(a, b) for a, b in zip(_crops("ir", 3), ir[:3], strict=True))


def test_rain_streaks_brighten_and_veil_the_crop() -> None:
    day, rain = _crops("day"), _crops("rain")
    # The haze pulls colours to grey-blue: less chroma; streaks add bright pixels.
    assert np.mean([chroma(c) for c in rain]) < np.mean([chroma(c) for c in day])
    camera = camera_look(0)
    k = frame_in(camera, "rain", np.random.default_rng(0))
    flat = np.full((480, 640, 3), 90, np.uint8)
    wet = camera.apply(flat, k, np.random.default_rng(0))
    assert (wet.max(axis=2) > 160).mean() > 0.001  # streaks
    with pytest.raises(ValueError, match="no 'snow' span"):
        frame_in(camera, "snow", np.random.default_rng(0))


def _record(path: Path, label: str, index: int, n: int) -> ImageRecord:
    return ImageRecord(path=path, rel_path=path.name, sha256=f"{n:064x}", label=label,
                       label_index=index, width=160, height=120, split="train")


def test_the_crop_recipe_shoots_crops_under_every_condition(tmp_path: Path) -> None:
    """CropSet draws each item's conditions from the mix (animals and "other" alike), and
    the crop it makes is the one those conditions give."""
    cv2.imwrite(str(tmp_path / "a.png"), _photo())
    records = [_record(tmp_path / "a.png", "cat", 0, 1)]
    crops = CropSet(records, 2, InputSpec(width=48, height=48), CropSpec(), 40, 40, seed=3,
                    cutouts=tmp_path / "cutouts")
    looks = [crops.look(i) for i in range(len(crops))]
    assert all(look is not None for look in looks)
    animal_looks = {look.scene for look in looks[:40] if look}
    other_looks = {look.scene for look in looks[40:] if look}
    assert animal_looks == other_looks == set(SCENE_MIX)
    assert {look.optics for look in looks if look} == set(OPTICS_MIX)
    # The look decides the picture: IR items are grey, day items are not.
    sat = {scene: [chroma(crops.image(i)) for i, look in enumerate(looks[:40])
                   if look and look.scene == scene and look.optics == "clean"]
           for scene in ("day", "ir")}
    assert sat["ir"] and sat["day"]
    assert max(sat["ir"]) < 0.03 < 0.06 < min(sat["day"])
