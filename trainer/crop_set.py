"""A training or validation set of agent-shaped crops (``trainer.crops``), made on demand.

Item ``i`` is drawn from a generator seeded by the set's seed and the item's key, so the
same settings give the same crops on any machine and in any order: the frozen backbone's
features of a crop can be cached under ``key`` and ``recipe`` (the crop spec, input
spec, seed and the recipe's version). The first ``per_image x len(records)`` items are
crops of the records: animal crops of the photos (their own label), pasted through the
photos' GrabCut cut-outs (``CUTOUT_WORK``; cached on disk by photo sha256 beside the park
clips', made once per photo), some with another photo of the set walking beside (a
validation crop's neighbour is a validation photo), and, for records of the "other"
label (crops an agent mined from its camera's background, confirmed by an operator),
those crops moved and worn a little; the rest are "other" crops of park clips.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from protocols import CropSpec, InputSpec

from .crops import NEIGHBOUR_SHARE, OtherSource, animal_crop, mined_crop
from .data import ImageRecord
from .errors import DatasetError
from .preprocess import U8Image, normalize, read_image
from .region_eval import default_cutout_cache
from .synth.cutout import Cutout, CutoutCache

# 3: animals pasted as cut-outs, not rectangles; 5: some beside a second animal (4 was a
# condition mix, reverted: docs/performance.md); 6: some "other" crops are a part of a
# distractor. A crop's key also names its neighbour's photo (below): the same pixels as
# before for the same photos, so the version stays.
RECIPE_VERSION = 6
# GrabCut at 128 px, 2 iterations: a tenth of the clips' cut-out cost (every training
# photo is cut out once), a coarser matte (crops are 5-45 % of a 640 px frame anyway).
CUTOUT_WORK = (128, 2)


@dataclass(frozen=True)
class CropItem:
    """What a crop is: its cache key (``sha256``, as an image record's) and label."""

    sha256: str
    label_index: int


class CropSet(Dataset[tuple[torch.Tensor, int]]):
    def __init__(self, records: Sequence[ImageRecord], other_index: int, spec: InputSpec,
                 crop_spec: CropSpec, per_image: int, negatives: int, seed: int,
                 cutouts: Path | None = None) -> None:
        self.spec, self.crop_spec, self.seed = spec, crop_spec, seed
        self.cutouts = CutoutCache(cutouts or default_cutout_cache(), *CUTOUT_WORK)
        self.photos = list(records)
        self.animals = [r for r in self.photos if r.label_index != other_index]
        self.per_image = per_image
        self.other_index = other_index
        self.beside: list[ImageRecord | None] = []
        self._seeds: list[int] = []  # each photo crop's random stream, from its key sans neighbour
        self.records: list[CropItem] = []
        for j in range(per_image):
            for r in self.photos:
                # A mined crop's key differs from a photo's: the same file was once cut as
                # an animal.
                key = f"{r.sha256}/{'mined/' if r.label_index == other_index else ''}{j}"
                near = None if r.label_index == other_index else self._neighbour(r, key)
                self.beside.append(near)
                self._seeds.append(_digest(key))
                # The neighbour's draw (and so the crop's jitter after it) depends on how
                # many animal photos the set holds: both are in the key.
                self.records.append(CropItem(
                    key if near is None
                    else f"{key}/beside/{near.sha256}/of/{len(self.animals)}", r.label_index))
        self.records += [CropItem(f"other/{j}", other_index) for j in range(negatives)]
        self._other: OtherSource | None = None
        self.recipe = hashlib.sha256(json.dumps(
            [RECIPE_VERSION, seed, crop_spec.model_dump(), spec.model_dump()], sort_keys=True
        ).encode()).hexdigest()[:16]

    def __len__(self) -> int:
        return len(self.records)

    def image(self, i: int) -> U8Image:
        """Item ``i``'s crop, BGR at the input size."""
        item = self.records[i]
        size = (self.spec.width, self.spec.height)
        if i < len(self.photos) * self.per_image:
            rng = np.random.default_rng([self.seed, self._seeds[i]])
            record = self.photos[i % len(self.photos)]
            if record.label_index == self.other_index:
                return mined_crop(read_image(record.path), size, rng)
            cut = self._cutout(record)
            near = self.beside[i]
            beside = None
            _neighbour_draws(rng, near is not None, len(self.animals))
            if near is not None:
                neighbour = self._cutout(near)
                beside = (neighbour.bgr, neighbour.alpha)
            return animal_crop(cut.bgr, self.crop_spec, size, self.seed, rng, cut.alpha,
                               beside)
        rng = np.random.default_rng([self.seed, _digest(item.sha256)])
        if self._other is None:  # planned once per process (DataLoader workers too)
            self._other = OtherSource(self.seed)
        return self._other.crop(self.crop_spec, size, rng)

    def _neighbour(self, record: ImageRecord, key: str) -> ImageRecord | None:
        """The animal photo walking beside crop ``key`` of ``record``, or None (a share
        ``NEIGHBOUR_SHARE`` get one): any other animal photo of the set, of either label,
        drawn from the crop's own random stream as ``image`` draws it, so its pixels are
        what they were before the key named the neighbour. On a grown dataset such a crop's
        key differs (the count of animal photos is in it), so no stale features are read."""
        rng = np.random.default_rng([self.seed, _digest(key)])
        if rng.random() >= NEIGHBOUR_SHARE:
            return None
        others = [r for r in self.animals if r is not record] or self.animals
        return others[int(rng.integers(len(others)))]

    def _cutout(self, record: ImageRecord) -> Cutout:
        try:
            return self.cutouts.get(record.path, record.sha256)
        except ValueError as exc:
            raise DatasetError(f"{exc} (changed since the dataset scan?)") from None

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img = self.image(i)
        if self.spec.color_order == "RGB":
            img = np.asarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), np.uint8)
        return torch.from_numpy(normalize(img, self.spec)), self.records[i].label_index


def _digest(key: str) -> int:
    return int(hashlib.sha256(key.encode()).hexdigest()[:12], 16)


def _neighbour_draws(rng: np.random.Generator, beside: bool, animals: int) -> None:
    """Advance ``rng`` past ``CropSet._neighbour``'s draws (made from the same seed), so the
    crop's jitter comes from the same place in its stream as when it drew them itself."""
    rng.random()
    if beside:
        rng.integers(max(animals - 1, 1))


__all__ = ["RECIPE_VERSION", "CropItem", "CropSet"]
