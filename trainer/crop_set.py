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
import numpy.typing as npt
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
# distractor; 7: the neighbour is drawn apart from the rendering, stably as a dataset grows
# (its photo is in the crop's key)
RECIPE_VERSION = 7
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
        self._animal_at = {id(r): k for k, r in enumerate(self.animals)}
        self._animal_hash = np.array([_digest(r.sha256) for r in self.animals], np.uint64)
        self.per_image = per_image
        self.other_index = other_index
        self.beside: list[ImageRecord | None] = []
        self.records: list[CropItem] = []
        for j in range(per_image):
            for r in self.photos:
                # A mined crop's key differs from a photo's: the same file was once cut as
                # an animal.
                key = f"{r.sha256}/{'mined/' if r.label_index == other_index else ''}{j}"
                near = None if r.label_index == other_index else self._neighbour(r, key)
                self.beside.append(near)
                self.records.append(CropItem(
                    key if near is None else f"{key}/beside/{near.sha256}", r.label_index))
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
        rng = np.random.default_rng([self.seed, _digest(item.sha256)])
        size = (self.spec.width, self.spec.height)
        if i < len(self.photos) * self.per_image:
            record = self.photos[i % len(self.photos)]
            if record.label_index == self.other_index:
                return mined_crop(read_image(record.path), size, rng)
            cut = self._cutout(record)
            near = self.beside[i]
            beside = None
            if near is not None:
                neighbour = self._cutout(near)
                beside = (neighbour.bgr, neighbour.alpha)
            return animal_crop(cut.bgr, self.crop_spec, size, self.seed, rng, cut.alpha,
                               beside)
        if self._other is None:  # planned once per process (DataLoader workers too)
            self._other = OtherSource(self.seed)
        return self._other.crop(self.crop_spec, size, rng)

    def _neighbour(self, record: ImageRecord, key: str) -> ImageRecord | None:
        """The animal photo walking beside crop ``key`` of ``record``, or None (a share
        ``NEIGHBOUR_SHARE`` get one): any other animal photo of the set, of either label.
        Drawn by the highest random weight of (key, photo), not by a place in the list: on
        a grown dataset a crop keeps its neighbour (and its cached features) unless a new
        photo outdraws it."""
        rng = np.random.default_rng([self.seed, _digest(key), 1])
        if rng.random() >= NEIGHBOUR_SHARE:
            return None
        if len(self.animals) == 1:
            return record
        weights = _mix(self._animal_hash ^ np.uint64(_digest(key)))
        weights[self._animal_at[id(record)]] = 0
        return self.animals[int(np.argmax(weights))]

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


def _mix(z: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """SplitMix64's finaliser, element-wise: well-spread 64-bit weights from near keys."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


__all__ = ["RECIPE_VERSION", "CropItem", "CropSet"]
