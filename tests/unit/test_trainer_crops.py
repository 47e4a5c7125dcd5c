"""The trainer's crops are the agent's crops; the animal confidence is calibrated as said."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent.regions.crops import CropCutter
from protocols import CropSpec, InputSpec
from trainer.crop_set import CropSet
from trainer.crops import (
    FRAME,
    NEIGHBOUR_SHARE,
    OTHER,
    Box,
    OtherSource,
    Placed,
    animal_crop,
    cut_crop,
    hidden_share,
    jitter_box,
    part_box,
    place_animal,
    random_box,
    spot_animal,
    spot_neighbour,
)
from trainer.data import ImageRecord
from trainer.region_eval import calibrate, calibration_crops, threshold_for


@pytest.mark.parametrize("box", [
    (100.0, 120.0, 180.0, 170.0),  # inside the frame
    (-20.0, 300.0, 60.0, 470.0),  # leaves it: padded
    (600.0, 10.0, 660.0, 40.0),
])
def test_cut_crop_gives_the_agents_pixels(box: tuple[float, float, float, float]) -> None:
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    spec = CropSpec(context=0.2, pad_value=90)
    agent = CropCutter(48, 48, spec, 4).cut(frame, [box])[0]
    assert np.array_equal(cut_crop(frame, box, spec, (48, 48)), agent)


def test_jitter_moves_and_resizes_a_box_within_bounds() -> None:
    rng = np.random.default_rng(1)
    for _ in range(200):
        x0, y0, x1, y1 = jitter_box((100, 100, 200, 150), rng, scale=0.2, shift=0.1)
        assert 80 - 1e-9 <= x1 - x0 <= 120 + 1e-9 and 40 - 1e-9 <= y1 - y0 <= 60 + 1e-9
        assert abs((x0 + x1) / 2 - 150) <= 10 + 1e-9


def _other_and_animals() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels cat, dog, other: 100 "other" crops, 10 of which the model calls a cat with
    confidences 0.50, 0.55 ... 0.95; then 50 cats at 0.9."""
    probs, y = [], []
    for i in range(100):
        c = 0.5 + 0.05 * i if i < 10 else 0.0
        probs.append([c, 0.0, 1 - c] if c else [0.1, 0.1, 0.8])
        y.append(2)
    for _ in range(50):
        probs.append([0.9, 0.05, 0.05])
        y.append(0)
    p = np.array(probs)
    return p, np.array(y), p[:100]


def test_calibration_keeps_false_animals_per_hour_at_the_target() -> None:
    val, y, other = _other_and_animals()
    # 3 false animals an hour of 100 regions: 3 % of the held-out "other" crops may pass.
    threshold, figures = calibrate(val, y, other, [2], per_hour=3.0, regions_per_hour=100.0)
    assert 0.8 < threshold <= 0.85  # 0.8 is the 4th highest false-animal confidence
    assert figures["heldout_false_animal_rate"] == pytest.approx(0.03)
    assert figures["expected_false_animals_per_hour"] == pytest.approx(3.0)
    assert figures["resolved"] == 1.0 and figures["heldout_other_crops"] == 100
    assert figures["val_animal_kept"] == 1.0
    # Ten times the regions an hour: a tenth of the share, so the highest must not pass.
    strict, figures = calibrate(val, y, other, [2], per_hour=3.0, regions_per_hour=1000.0)
    assert 0.95 < strict <= 0.99 and figures["heldout_false_animal_rate"] == 0.0
    # A target 100 crops cannot resolve says so; a model that never errs needs nothing.
    assert calibrate(val, y, other, [2], 1.0, 1000.0)[1]["resolved"] == 0.0
    assert calibrate(val[10:], y[10:], other[10:], [2], 3.0, 100.0)[0] == 0.0


def test_the_threshold_is_the_quantile_of_the_animal_scores() -> None:
    scores = np.linspace(0.001, 1.0, 1000, dtype=np.float32)  # 0.001 ... 1.0
    t = threshold_for(scores, 0.1)
    assert float(np.mean(scores >= t)) == pytest.approx(0.1)
    assert threshold_for(scores, 0.0) == 0.99  # capped: a higher one drops every animal
    assert threshold_for(np.zeros(50, np.float32), 0.01) == 0.0  # no crop reads as an animal


def test_calibration_crops_are_held_out_and_reproducible() -> None:
    spec = InputSpec(width=32, height=32)
    first = calibration_crops(5, 40, spec, CropSpec())
    assert len(first) == 40 and first[0].shape == (32, 32, 3)
    again = calibration_crops(5, 40, spec, CropSpec())
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    # Parks other than the training crops' (seed 5) and the validation crops' own.
    other = calibration_crops(6, 40, spec, CropSpec())
    assert not np.array_equal(first[0], other[0])
    assert len({c.tobytes() for c in first}) == 40


def _record(path: Path, label: str, index: int) -> ImageRecord:
    return ImageRecord(path=path, rel_path=path.name, sha256=f"{index:064x}", label=label,
                       label_index=index, width=120, height=100, split="train")


def test_crop_set_is_deterministic_and_labels_other(tmp_path: Path) -> None:
    photo = np.zeros((100, 120, 3), np.uint8)
    photo[:, :] = (30, 30, 220)  # a red square stands for the animal
    cv2.imwrite(str(tmp_path / "a.png"), photo)
    spec = InputSpec(width=32, height=32)
    cutouts = tmp_path / "cutouts"
    crops = CropSet([_record(tmp_path / "a.png", "cat", 0)], 2, spec, CropSpec(), 2, 3, seed=5,
                    cutouts=cutouts)
    assert len(crops) == 5 and [r.label_index for r in crops.records] == [0, 0, 2, 2, 2]
    again = CropSet([_record(tmp_path / "a.png", "cat", 0)], 2, spec, CropSpec(), 2, 3, seed=5,
                    cutouts=cutouts)
    for i in range(len(crops)):
        x, y = crops[i]
        assert x.shape == (3, 32, 32) and y == crops.records[i].label_index
        assert np.array_equal(crops.image(i), again.image(i))
    assert OTHER == "other" and crops.recipe == again.recipe
    # The photo was cut out once, coarser than the clips cut theirs, and stored apart.
    assert len(list(cutouts.glob(f"{0:064x}.v1-128x2.*.png"))) == 1
    # A different crop spec is a different recipe: cached features are not shared.
    other_spec = CropSet([], 2, spec, CropSpec(context=0.3), 1, 1, seed=5)
    assert other_spec.recipe != crops.recipe


def test_animal_crop_is_a_small_animal_on_a_park() -> None:
    photo = np.full((200, 240, 3), (30, 30, 220), np.uint8)
    rng = np.random.default_rng(3)
    shares = []
    for _ in range(20):
        crop = animal_crop(photo, CropSpec(), (64, 64), 0, rng)
        assert crop.shape == (64, 64, 3)
        red = (crop[..., 2].astype(int) - crop[..., 1] > 80).mean()
        shares.append(red)
    # The animal fills part of its crop (context and jitter), never all of it; at night
    # and in IR its colour is gone, but in day light it shows.
    assert max(shares) > 0.1 and all(s < 0.95 for s in shares)
    assert FRAME == (640, 480)


def test_an_animal_is_pasted_through_its_matte_and_boxed_by_it() -> None:
    # A red disc (the animal) on a blue photo background (a sofa): only the disc may
    # reach the park, and the box is the disc's.
    photo = np.full((200, 300, 3), (200, 40, 40), np.uint8)
    alpha = np.zeros((200, 300), np.float32)
    cv2.circle(photo, (150, 110), 60, (30, 30, 220), -1)
    cv2.circle(alpha, (150, 110), 60, 1.0, -1)
    rng = np.random.default_rng(4)
    for width in (40.0, 120.0, 250.0):
        canvas = np.full((480, 640, 3), (60, 140, 70), np.uint8)
        x0, y0, x1, y1 = place_animal(canvas, photo, alpha, width, rng)
        assert abs((x1 - x0) - width) <= 2 and abs((y1 - y0) - width) <= 2
        red = (canvas[..., 2].astype(int) - canvas[..., 1] > 80)
        ys, xs = np.nonzero(red)
        assert abs(xs.min() - x0) <= 1 and abs(xs.max() + 1 - x1) <= 1
        assert abs(ys.min() - y0) <= 1 and abs(ys.max() + 1 - y1) <= 1
        blue = canvas[..., 0].astype(int) - canvas[..., 1] > 80
        assert not blue.any()  # none of the photo's own background
    # Without a matte the whole photo is the animal: its rectangle, background and all.
    canvas = np.full((480, 640, 3), (60, 140, 70), np.uint8)
    x0, y0, x1, y1 = place_animal(canvas, photo, None, 150.0, rng)
    assert (x1 - x0, y1 - y0) == (150, 100)
    assert (canvas[..., 0].astype(int) - canvas[..., 1] > 80).any()


def test_random_boxes_fit_the_frame() -> None:
    rng = np.random.default_rng(2)
    for _ in range(5000):
        x0, y0, x1, y1 = random_box(rng)
        w = x1 - x0
        assert 0.03 * FRAME[0] - 1e-6 <= w <= 0.5 * FRAME[0] + 1e-6
        assert 0 <= y0 < y1 <= FRAME[1] + 1e-6
        assert -0.1 * w - 1e-6 <= x0 and x1 <= FRAME[0] + 0.1 * w + 1e-6


def test_a_datasets_mined_negatives_are_other_crops_of_themselves(tmp_path: Path) -> None:
    """An other/ folder holds crops an agent mined: they stay themselves (no park around
    them, as a photo of an animal gets), under keys apart from a photo's."""
    mined = np.full((32, 32, 3), (40, 160, 60), np.uint8)  # a green crop of a lawn
    cv2.imwrite(str(tmp_path / "sample-1.png"), mined)
    photo = np.full((100, 120, 3), (30, 30, 220), np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), photo)
    records = [_record(tmp_path / "a.png", "cat", 0), _record(tmp_path / "sample-1.png",
                                                              "other", 2)]
    crops = CropSet(records, 2, InputSpec(width=48, height=48), CropSpec(), 3, 0, seed=5,
                    cutouts=tmp_path / "cutouts")
    keys = [r.sha256 for r in crops.records]
    assert len(set(keys)) == 6 and sum("/mined/" in k for k in keys) == 3
    for i, item in enumerate(crops.records):
        img = crops.image(i).astype(int)
        assert img.shape == (48, 48, 3)
        if item.label_index == 2:
            # All of it is the mined crop (green), at most worn by blur or JPEG.
            assert abs(img[..., 1].mean() - 160) < 12 and img[..., 2].mean() < 80
        else:
            assert not (abs(img[..., 1].mean() - 160) < 12)


def _disc(bgr: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A disc of colour ``bgr`` on a grey photo, and its matte: an animal's cut-out."""
    photo = np.full((120, 120, 3), 128, np.uint8)
    alpha = np.zeros((120, 120), np.float32)
    cv2.circle(photo, (60, 60), 50, bgr, -1)
    cv2.circle(alpha, (60, 60), 50, 1.0, -1)
    return photo, alpha


def _shows(crop: np.ndarray, channel: int) -> bool:
    """The crop holds pixels of a saturated disc in ``channel`` (0 blue, 2 red)."""
    img = crop.astype(int)
    return bool(((img[..., channel] - img[..., 1]) > 80).mean() > 0.01)


def test_a_neighbour_walks_beside_the_animal() -> None:
    """As a clip's follower trails its leader: half to twice its size, beside it (from
    touching to nearly over it), bottoms near level; in front only where it leaves at
    least half of the first in view."""
    (red, red_a), (blue, blue_a) = _disc((30, 30, 220)), _disc((220, 40, 30))
    rng = np.random.default_rng(8)
    overlapping = 0
    for _ in range(200):
        box = spot_animal(red, red_a, 120.0, rng).box(FRAME)
        b = spot_neighbour(blue, blue_a, box, rng).box(FRAME)
        w, bw = box[2] - box[0], b[2] - b[0]
        if b[0] > 0 and b[2] < FRAME[0]:  # whole in the frame: its width is its size
            assert 0.5 * w - 2 <= bw <= 2.2 * w + 2
            gap = abs((b[0] + b[2]) - (box[0] + box[2])) / (w + bw)
            assert 0.1 - 0.02 <= gap <= 1.0 + 0.02
            overlapping += gap < 0.9
        assert abs(b[3] - box[3]) <= 0.9 * (box[3] - box[1]) or b[3] >= FRAME[1] - 1
    assert overlapping > 100
    # What one hides of another: all of a disc under the same disc, none beside it.
    a = spot_animal(red, red_a, 100.0, rng)
    assert hidden_share(Placed(a.bgr, a.matte, a.x, a.y), a) == pytest.approx(1.0)
    assert hidden_share(Placed(a.bgr, a.matte, a.x + 200, a.y), a) == 0.0
    half = Placed(a.bgr, a.matte, a.x + a.matte.shape[1] // 2, a.y)
    assert 0.1 < hidden_share(half, a) < 0.5


def test_some_animal_crops_hold_a_second_animal_and_keep_their_label(tmp_path: Path) -> None:
    """On the park clips animals walk in groups; a model that only ever saw one animal per
    crop read a cat with a dog beside it as a dog. Crops of a cat photo must now at times
    show another photo's animal too, still labelled cat, and never on the "other" crops."""
    for name, colour in (("cat.png", (30, 30, 220)), ("dog.png", (220, 40, 30))):
        photo = np.full((100, 120, 3), (128, 128, 128), np.uint8)
        cv2.circle(photo, (60, 50), 40, colour, -1)
        cv2.imwrite(str(tmp_path / name), photo)
    records = [_record(tmp_path / "cat.png", "cat", 0), _record(tmp_path / "dog.png", "dog", 1)]
    crops = CropSet(records, 2, InputSpec(width=64, height=64), CropSpec(), 16, 0, seed=3,
                    cutouts=tmp_path / "cutouts")
    keys = [r.sha256 for r in crops.records]
    cat_items = [i for i, r in enumerate(crops.records)  # not a crop of two (both labels)
                 if r.label_index == 0 and keys.count(r.sha256) == 1]
    both = sum(_shows(crops.image(i), 0) for i in cat_items)
    # NEIGHBOUR_SHARE of them get a neighbour; night, IR and a crop that leaves it outside
    # hide some of those.
    assert crops[cat_items[0]][1] == 0 and len(cat_items) == 16
    assert 2 <= both <= round(NEIGHBOUR_SHARE * 16) + 2, both



def test_a_part_of_a_distractor_lies_inside_it_at_its_share() -> None:
    rng = np.random.default_rng(5)
    box = (100.0, 50.0, 140.0, 250.0)  # a walker 40 x 200 px
    for _ in range(200):
        x0, y0, x1, y1 = part_box(box, rng)
        assert 100 - 1e-9 <= x0 < x1 <= 140 + 1e-9 and 50 - 1e-9 <= y0 < y1 <= 250 + 1e-9
        assert 0.4 * 40 - 1e-9 <= x1 - x0 <= 40 + 1e-9
        assert 0.15 * 200 - 1e-9 <= y1 - y0 <= 0.6 * 200 + 1e-9


def test_some_other_crops_are_parts_of_a_distractor(monkeypatch: pytest.MonkeyPatch) -> None:
    # A night's regions cut a walker into its head and legs: the model must have seen
    # such pieces as "other", not only whole walkers and boxes of the lawn.
    import trainer.crops as crops

    parts: list[Box] = []

    def recorded(box: Box, rng: np.random.Generator) -> Box:
        parts.append(box)
        return part_box(box, rng)

    monkeypatch.setattr(crops, "part_box", recorded)
    source = OtherSource(7, seconds=30.0)
    rng = np.random.default_rng(2)
    for _ in range(60):
        crop = source.crop(CropSpec(context=0.2), (48, 48), rng)
        assert crop.shape == (48, 48, 3)
    assert 5 <= len(parts) <= 25, len(parts)
