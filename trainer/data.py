"""The dataset: scan an ImageFolder, version it by content, split it, stream it to torch.

An ImageFolder is ``root/<label>/**/<image>``; labels are the sorted names of
the folders that hold at least one usable image. Files that cannot be decoded
are listed in :attr:`DatasetScan.rejected` and left out, never a crash. The
dataset version is the sha256 of the sorted manifest (relative path, file
hash, label), so the same files give the same version on any machine.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from protocols import InputSpec

from .errors import DatasetError
from .hashing import dhash
from .imagefolder import IMAGE_SUFFIXES, folder_files
from .preprocess import U8Image, augment, decode_image, normalize, read_image, resize_to_input

Split = Literal["train", "val", "test"]


@dataclass(frozen=True)
class ImageRecord:
    """One usable image: where it is, what it holds, which label and split it has."""

    path: Path
    rel_path: str  # POSIX path relative to the dataset root: part of the version
    sha256: str
    label: str
    label_index: int
    width: int
    height: int
    split: Split
    dhash: int = 0  # 64-bit difference hash (near-duplicate check)
    brightness: float = 0.0  # mean grey level, 0-255


@dataclass(frozen=True)
class RejectedFile:
    rel_path: str
    reason: str


@dataclass(frozen=True)
class DatasetScan:
    """The result of scanning a folder: usable images, rejected files, labels, version."""

    root: Path
    labels: list[str]
    records: list[ImageRecord]
    rejected: list[RejectedFile] = field(default_factory=list)
    version: str = ""

    def split(self, name: Split) -> list[ImageRecord]:
        return [r for r in self.records if r.split == name]

    def summary(self) -> dict[str, object]:
        """Counts per split and label, and the rejected files, for the report."""
        counts: dict[str, dict[str, int]] = {}
        for name in ("train", "val", "test"):
            per_label = Counter(r.label for r in self.records if r.split == name)
            counts[name] = {label: per_label.get(label, 0) for label in self.labels}
        return {
            "root": str(self.root),
            "version": self.version,
            "labels": self.labels,
            "images": len(self.records),
            "split_counts": counts,
            "rejected": [{"path": r.rel_path, "reason": r.reason} for r in self.rejected],
        }


def dataset_version(entries: Sequence[tuple[str, str, str]]) -> str:
    """sha256 of the sorted ``(relative path, file sha256, label)`` manifest."""
    digest = hashlib.sha256()
    for rel, sha, label in sorted(entries):
        digest.update(f"{rel}\t{sha}\t{label}\n".encode())
    return digest.hexdigest()


def assign_split(file_sha256: str, seed: int, val_fraction: float, test_fraction: float) -> Split:
    """Deterministic split from the file's content hash and the seed.

    Identical files always land in the same split, so a duplicate can never
    leak from training into the test set.
    """
    h = hashlib.sha256(f"{seed}:{file_sha256}".encode()).digest()
    u = int.from_bytes(h[:8], "big") / 2.0**64
    if u < test_fraction:
        return "test"
    if u < test_fraction + val_fraction:
        return "val"
    return "train"


def _inspect(path: Path) -> tuple[str, int, int, int, float] | str:
    """(sha256, width, height, dHash, brightness) of a decodable image, or why it is not one."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return f"not an image file (suffix {path.suffix or 'none'!r})"
    img = decode_image(data)
    if img is None:
        return "cannot be decoded (corrupt, truncated or not an image)"
    gray = np.asarray(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
    return (
        hashlib.sha256(data).hexdigest(), int(img.shape[1]), int(img.shape[0]),
        dhash(gray), float(gray.mean()),
    )


def scan_image_folder(
    root: Path, seed: int = 0, val_fraction: float = 0.15, test_fraction: float = 0.15
) -> DatasetScan:
    """Scan ``root`` (ImageFolder), hash and decode-check every file, version and split it."""
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} does not exist or is not a folder")
    candidates = folder_files(root)
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        results = list(pool.map(_inspect, [path for _, path in candidates]))

    good: list[tuple[str, Path, str, int, int, int, float]] = []
    rejected: list[RejectedFile] = []
    for (label, path), result in zip(candidates, results, strict=True):
        rel = path.relative_to(root).as_posix()
        if isinstance(result, str):
            rejected.append(RejectedFile(rel, result))
        else:
            good.append((label, path, *result))
    labels = sorted({label for label, *_ in good})
    if len(labels) < 2:
        raise DatasetError(
            f"{root} has usable images in {len(labels)} label folder(s) {labels}; a classifier "
            "needs at least two: put images in one sub-folder per label (ImageFolder layout)"
        )
    index = {label: i for i, label in enumerate(labels)}
    records = [
        ImageRecord(
            path=path,
            rel_path=path.relative_to(root).as_posix(),
            sha256=sha,
            label=label,
            label_index=index[label],
            width=width,
            height=height,
            split=assign_split(sha, seed, val_fraction, test_fraction),
            dhash=dh,
            brightness=bright,
        )
        for label, path, sha, width, height, dh, bright in good
    ]
    version = dataset_version([(r.rel_path, r.sha256, r.label) for r in records])
    scan = DatasetScan(root, labels, records, rejected, version)
    splits: tuple[Split, ...] = ("train", "val", "test")
    for name in splits:
        if not scan.split(name):
            raise DatasetError(
                f"{root}: the {name} split is empty ({len(records)} usable images); "
                "add images or raise val_fraction/test_fraction"
            )
    return scan


class ImageDataset(Dataset[tuple[torch.Tensor, int]]):
    """Decodes lazily from disk (nothing big in memory), preprocesses per the InputSpec.

    With ``augment`` the augmentation of item ``i`` in epoch ``e`` is drawn from a
    generator seeded by ``(seed, e, i)``: the same whatever the number of workers.
    """

    def __init__(
        self,
        records: Sequence[ImageRecord],
        spec: InputSpec,
        augment: bool = False,
        seed: int = 0,
        cache_bytes: int = 0,
    ) -> None:
        self.records = list(records)
        self.spec = spec
        self.augment = augment
        self.seed = seed
        self.epoch = 0
        # Decoded input-size images kept up to a byte budget (per DataLoader worker): a
        # small set is decoded once, a 100k-image set still streams past the budget.
        self.cache_bytes = cache_bytes
        self._cache: dict[int, U8Image] = {}
        self._cached_bytes = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.records)

    def input_image(self, i: int) -> U8Image:
        """The resized image (uint8, spec colour order) of item ``i``, not augmented."""
        cached = self._cache.get(i)
        if cached is not None:
            return cached
        img = resize_to_input(read_image(self.records[i].path), self.spec)
        if self._cached_bytes + img.nbytes <= self.cache_bytes:
            img.setflags(write=False)
            self._cache[i] = img
            self._cached_bytes += img.nbytes
        return img

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img = self.input_image(i)
        if self.augment:
            img = augment(img, np.random.default_rng([self.seed, self.epoch, i]))
        return torch.from_numpy(normalize(img, self.spec)), self.records[i].label_index


__all__ = [
    "IMAGE_SUFFIXES",
    "DatasetScan",
    "ImageDataset",
    "ImageRecord",
    "RejectedFile",
    "assign_split",
    "dataset_version",
    "scan_image_folder",
]
