"""The data stages: ``scan`` (hash, decode-check and version the image folder) and
``split`` (the train/val/test records, the input spec, the data validation report).

The split itself is a function of each file's content hash and the seed
(:func:`trainer.data.assign_split`), fixed when the folder is scanned; ``split``
hands the three record lists to the later stages and checks the result (duplicates,
leakage across splits, balance) before any training time is spent.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

from protocols import InputSpec

from ..config import TrainerSettings
from ..crops import OTHER
from ..data import DatasetScan, ImageRecord, scan_image_folder
from ..quality import check_label_counts, check_splits
from ..runner import Figure, RunContext
from ..validate import validation_report

log = logging.getLogger(__name__)


def input_spec(settings: TrainerSettings) -> InputSpec:
    """The InputSpec of the configured network; agents preprocess exactly so.

    PetNet (from scratch) uses the ImageNet mean/std; Lite0 keeps the normalisation its
    TensorFlow weights were trained with, ``(x - 127) / 128`` on 0-255 RGB (measured
    here: zero-shot on the real photos it puts more of its top-1 predictions on cat and
    dog classes than with the ImageNet mean/std).
    """
    size = settings.input_size
    if settings.arch == "lite0":
        return InputSpec(width=size, height=size, scale=1.0, mean=(127.0, 127.0, 127.0),
                         std=(128.0, 128.0, 128.0))
    return InputSpec(width=size, height=size)


@dataclass(frozen=True)
class Scanned:
    scan: DatasetScan

    def figures(self) -> dict[str, Figure]:
        return {"version": self.scan.version[:12], "images": len(self.scan.records),
                "labels": ",".join(self.scan.labels), "rejected": len(self.scan.rejected)}


def scan_stage(ctx: RunContext) -> Scanned:
    s = ctx.settings
    scan = scan_image_folder(s.data_dir, s.seed, s.val_fraction, s.test_fraction)
    for rejected in scan.rejected:
        log.warning("excluded %s: %s", rejected.rel_path, rejected.reason)
    return Scanned(scan)


@dataclass(frozen=True)
class Splits:
    labels: list[str]
    spec: InputSpec
    train: list[ImageRecord]
    val: list[ImageRecord]
    test: list[ImageRecord]
    validation: dict[str, Any]  # data_validation.json

    def figures(self) -> dict[str, Figure]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test),
                "validation": "; ".join(self.validation["warnings"]) or "no problems found"}


def split_stage(ctx: RunContext) -> Splits:
    """The three splits; refuses, before training, a split too small to evaluate a model on."""
    scan = ctx[Scanned].scan
    where = str(ctx.settings.data_dir)
    per_split = {name: dict.fromkeys(scan.labels, 0) for name in ("train", "val", "test")}
    for record in scan.records:
        per_split[record.split][record.label] += 1
    validation = validation_report(scan, ctx.settings.near_duplicate_bits)
    # Written now, not with the other reports: a run that fails later still leaves it.
    ctx.write_json("data_validation.json", validation)
    counts = Counter(r.label for r in scan.records)
    if ctx.settings.regions:
        # A regions model's "other" class comes from park clips; an other/ folder (the
        # negatives operators confirmed from their cameras) only adds to it, so a few
        # are enough and none need land in the test split.
        counts.pop(OTHER, None)
        per_split = {name: {lb: n for lb, n in split.items() if lb != OTHER}
                     for name, split in per_split.items()}
    check_label_counts(where, counts, ctx.settings)
    check_splits(where, per_split, ctx.settings)
    labels = list(scan.labels)
    if ctx.settings.regions and OTHER not in labels:
        labels.append(OTHER)  # mined from park clips, not a folder of the dataset
    return Splits(labels, input_spec(ctx.settings), scan.split("train"),
                  scan.split("val"), scan.split("test"), validation)


__all__ = ["Scanned", "Splits", "input_spec", "scan_stage", "split_stage"]
