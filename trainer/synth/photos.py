"""Which real photos a clip may film: one split of the trainer's, by the trainer's own rule.

A clip that evaluates a model must show only photos of that model's *test* split, or the
figures measure memory, not generalisation. The split of a photo is
``trainer.data.assign_split`` of its content hash (the rule ``parkwatch train`` applies),
so the parameters here must be the ones the model was trained with (seed 0, 15 % val,
15 % test by default, as in ``TrainerSettings``). A trainer that composes scenes from its
*training* photos (to learn on crops) asks for ``split="train"``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")


@dataclass(frozen=True)
class Photo:
    path: Path
    rel_path: str  # POSIX, relative to the pool's root: what a sidecar records
    sha256: str
    label: str


@dataclass(frozen=True)
class PhotoPool:
    """The photos of one split of an ImageFolder (``root/<label>/*.jpg``)."""

    root: Path
    split: Split = "test"
    seed: int = 0
    val_fraction: float = 0.15
    test_fraction: float = 0.15

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"unknown split {self.split!r}; expected one of {', '.join(SPLITS)}")
        if not (0 <= self.val_fraction < 1 and 0 <= self.test_fraction < 1
                and self.val_fraction + self.test_fraction < 1):
            raise ValueError("val_fraction and test_fraction must be in [0, 1) with a sum "
                             f"below 1, got {self.val_fraction} and {self.test_fraction}")

    def photos(self, label: str) -> list[Photo]:
        """The photos of ``label`` in this split, in file-hash order (stable across machines)."""
        # trainer.data imports torch: only a clip that films photos pays for it.
        from trainer.data import IMAGE_SUFFIXES, assign_split

        folder = Path(self.root) / label
        if not folder.is_dir():
            raise ValueError(f"no folder {folder}: the photos must be in ImageFolder layout "
                             f"(root/<label>/*.jpg, e.g. root/{label}/0001.jpg)")
        hashed = sorted(
            (hashlib.sha256(p.read_bytes()).hexdigest(), p)
            for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        )
        return [Photo(p, p.relative_to(self.root).as_posix(), sha, label) for sha, p in hashed
                if assign_split(sha, self.seed, self.val_fraction, self.test_fraction)
                == self.split]


def held_out_photos(root: Path, label: str, seed: int = 0, val_fraction: float = 0.15,
                    test_fraction: float = 0.15) -> list[Path]:
    """The photos of ``label`` that the trainer puts in its test split, in file-hash order."""
    pool = PhotoPool(root, "test", seed, val_fraction, test_fraction)
    return [p.path for p in pool.photos(label)]
