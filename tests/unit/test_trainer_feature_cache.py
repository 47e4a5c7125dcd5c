"""The probe's feature cache: the same features as computing them, and a grown dataset
computes only its new images."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from protocols import InputSpec
from trainer import TrainerError
from trainer.data import ImageDataset, ImageRecord
from trainer.feature_cache import FeatureCache, backbone_key
from trainer.finetune import _Flipped, cached_features, extract_features
from trainer.lite0 import Lite0

SPEC = InputSpec(width=64, height=64)


def write_images(root: Path, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for i in range(n):
        label = ("cat", "dog")[i % 2]
        (root / label).mkdir(parents=True, exist_ok=True)
        image = rng.integers(0, 256, (48, 56, 3), dtype=np.uint8)
        assert cv2.imwrite(str(root / label / f"s{seed}-{i}.png"), image)


def dataset(root: Path) -> ImageDataset:
    """Every image of ``root`` (its split does not matter here), in a stable order."""
    records = [
        ImageRecord(path=path, rel_path=path.name, label=path.parent.name,
                    sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                    label_index=("cat", "dog").index(path.parent.name), width=56, height=48,
                    split="train")
        for path in sorted(root.glob("*/*.png"))
    ]
    return ImageDataset(records, SPEC)


class Counting(Lite0):
    """Lite0 that counts the images its backbone embeds."""

    embedded = 0

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        self.embedded += len(x)
        return super().embed(x)


def test_cached_features_equal_computed_ones_and_only_new_images_are_computed(
    tmp_path: Path,
) -> None:
    torch.manual_seed(0)
    model = Counting(2, input_size=64).eval()
    key = backbone_key(model, SPEC.model_dump())
    write_images(tmp_path / "data", 6, seed=1)
    first = dataset(tmp_path / "data")
    cache = FeatureCache(tmp_path / "cache", key)
    try:
        x, y = cached_features(model, first, first, "plain", cache, 4, torch.device("cpu"))
        flipped, _ = cached_features(model, _Flipped(first), first, "flip", cache, 4,
                                     torch.device("cpu"))
        assert model.embedded == 2 * len(first)
        want_x, want_y = extract_features(model, first, 4, torch.device("cpu"))
        torch.testing.assert_close(x, want_x, rtol=1e-4, atol=0)
        assert torch.equal(y, want_y)
        assert not torch.allclose(flipped, x, rtol=1e-2, atol=0)  # a view has its own entries

        write_images(tmp_path / "data", 4, seed=2)  # the dataset grows by 4 images
        grown = dataset(tmp_path / "data")
        model.embedded = 0
        x2, y2 = cached_features(model, grown, grown, "plain", cache, 4, torch.device("cpu"))
        assert model.embedded == len(grown) - len(first) == 4
        want_x2, want_y2 = extract_features(model, grown, 4, torch.device("cpu"))
        torch.testing.assert_close(x2, want_x2, rtol=1e-4, atol=0)
        assert torch.equal(y2, want_y2)
    finally:
        cache.close()


def test_other_weights_or_input_spec_never_share_features() -> None:
    torch.manual_seed(0)
    a = Lite0(2, input_size=64)
    torch.manual_seed(1)
    b = Lite0(2, input_size=64)
    spec = SPEC.model_dump()
    assert backbone_key(a, spec) != backbone_key(b, spec)
    assert backbone_key(a, spec) != backbone_key(a, {**spec, "width": 96})
    with torch.no_grad():  # the head is not part of the backbone
        a.fc.weight.add_(1.0)
    assert backbone_key(a, spec) == backbone_key(a, spec)


def test_an_unusable_cache_folder_names_the_setting(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(TrainerError, match="feature_cache_dir"):
        FeatureCache(blocker / "cache", "k")
