"""Crop features in the feature cache: a crop's key names everything its pixels depend
on, so a grown dataset (a retraining's, on the same cache) never reads another rendering's
features, and an unchanged one computes nothing."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from protocols import CropSpec, InputSpec
from trainer.crop_set import CropSet
from trainer.data import ImageRecord
from trainer.feature_cache import FeatureCache, backbone_key
from trainer.finetune import cached_features, extract_features
from trainer.lite0 import Lite0

SPEC = InputSpec(width=32, height=32)
COLOURS = ((30, 30, 220), (220, 40, 30), (40, 200, 40), (200, 200, 30), (200, 40, 200))


def photos(root: Path, n: int) -> list[ImageRecord]:
    """``n`` animal photos, a disc of its own colour each (cats and dogs by turns)."""
    out = []
    for i in range(n):
        photo = np.full((100, 120, 3), (128, 128, 128), np.uint8)
        cv2.circle(photo, (60, 50), 40, COLOURS[i], -1)
        path = root / f"p{i}.png"
        cv2.imwrite(str(path), photo)
        out.append(ImageRecord(path=path, rel_path=path.name, sha256=f"{i:064x}",
                               label=("cat", "dog")[i % 2], label_index=i % 2, width=120,
                               height=100, split="train"))
    return out


def crop_set(records: list[ImageRecord], cutouts: Path) -> CropSet:
    return CropSet(records, 2, SPEC, CropSpec(), 6, 0, seed=3, cutouts=cutouts)


def test_a_crop_key_names_its_neighbour_so_a_grown_set_reads_no_stale_features(
    tmp_path: Path,
) -> None:
    records = photos(tmp_path, 5)
    small, grown = crop_set(records[:2], tmp_path / "cut"), crop_set(records, tmp_path / "cut")
    keys = {r.sha256: i for i, r in enumerate(grown.records)}
    shared = [(i, keys[r.sha256]) for i, r in enumerate(small.records) if r.sha256 in keys]
    # Some of the first photos' crops keep their key (an unchanged neighbour, or none)...
    assert shared
    # ...and a kept key is the same crop, pixel for pixel.
    for i, j in shared:
        assert np.array_equal(small.image(i), grown.image(j)), small.records[i].sha256

    torch.manual_seed(0)
    model = Lite0(2, input_size=32).eval()
    cache = FeatureCache(tmp_path / "cache", backbone_key(model, SPEC.model_dump()))
    device = torch.device("cpu")
    try:
        view = f"crop-{small.recipe}"
        assert small.recipe == grown.recipe
        cached_features(model, small, small, view, cache, 8, device)
        x, _ = cached_features(model, grown, grown, view, cache, 8, device)
        want, _ = extract_features(model, grown, 8, device)
        torch.testing.assert_close(x, want, rtol=1e-4, atol=1e-5)
        # Retraining on the same photos: the same keys, every one of them cached.
        again = [r.sha256 for r in crop_set(records, tmp_path / "cut").records]
        assert again == [r.sha256 for r in grown.records]
        assert len(cache.get(again, view)) == len(grown)
    finally:
        cache.close()
