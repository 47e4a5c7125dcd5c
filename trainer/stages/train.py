"""The ``train`` stage: one training (or a budgeted search) from seeded settings, and the
checkpoint of the best weights.

PetNet trains from scratch (``trainer.train``); Lite0 fits a linear probe on its
pretrained features and optionally fine-tunes (``trainer.finetune``); with
``search_trials`` > 1 a budgeted random search keeps the best by validation accuracy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from rich.console import Console

from protocols import CropSpec, InputSpec

from ..config import TrainerSettings
from ..crop_set import CropSet
from ..crops import OTHER, REGION_CROPS
from ..data import ImageDataset, ImageRecord
from ..errors import TrainerError
from ..inference import OnnxModel
from ..model import PetNet
from ..region_eval import predict_crops
from ..runner import Figure, RunContext
from ..search import SearchResult, run_search
from ..train import EpochStats, TrainOutcome, deterministic, train_model
from .data import Scanned, Splits


@dataclass(frozen=True)
class Trained:
    outcome: TrainOutcome  # the model, with the weights of its best validation epoch
    settings: TrainerSettings  # the settings that produced it (the search's best, if any)
    search: SearchResult | None
    checkpoint_path: Path

    def hyperparameters(self) -> dict[str, Any]:
        """The lineage's hyper-parameters: the settings that shaped it and what training did."""
        s = self.settings
        return {
            **s.hyperparameters(),
            "epochs_run": len(self.outcome.history),
            "best_epoch": self.outcome.best_epoch,
            "optimizer": "adamw" if s.arch != "lite0" else "lbfgs probe"
            + ("" if s.finetune == "none" else " + adamw fine-tune"),
            "schedule": "onecycle",
            "architecture": "efficientnet_lite0" if s.arch == "lite0"
            else f"mobilenet_v3_{s.arch}",
            "search_trials": len(self.search.trials) if self.search else 0,
        }

    def figures(self) -> dict[str, Figure]:
        figures: dict[str, Figure] = {
            "epochs_run": len(self.outcome.history),
            "best_epoch": self.outcome.best_epoch,
            "best_val_accuracy": self.outcome.best_val_accuracy,
            "images_per_s": round(self.outcome.images_per_s, 1),
        }
        if self.search:
            figures["search_trials"] = len(self.search.trials)
        return figures


def fit(
    settings: TrainerSettings,
    labels: Sequence[str],
    spec: InputSpec,
    train: Sequence[ImageRecord],
    val: Sequence[ImageRecord],
    console: Console,
    show_progress: bool,
    on_epoch: Callable[[EpochStats], None] | None = None,
) -> tuple[TrainOutcome, TrainerSettings, SearchResult | None]:
    """Train (or search); return the outcome, the settings that produced it, the search."""
    cache = settings.cache_mb * 2**20
    train_set = ImageDataset(train, spec, augment=settings.augment, seed=settings.seed,
                             cache_bytes=cache)
    val_set = ImageDataset(val, spec, cache_bytes=cache)

    def train_one(s: TrainerSettings) -> TrainOutcome:
        with deterministic(s.seed):
            model = PetNet(len(labels), s.width_mult, s.input_size, arch=s.arch,
                           bn_momentum=s.bn_momentum)
            return train_model(model, train_set, val_set, s, console=console,
                               show_progress=show_progress, on_epoch=on_epoch)

    if settings.arch == "lite0":
        crops = region_crops(settings, labels, spec, train, val) if settings.regions else None
        if settings.search_trials > 1:
            raise TrainerError("the hyper-parameter search tunes PetNet (arch compact or "
                               "small); with arch lite0 set search_trials to 0")
        from ..finetune import train_lite0

        with deterministic(settings.seed):
            outcome = train_lite0(len(labels), train_set, val_set, settings, console,
                                  show_progress, on_epoch, crops)
        return outcome, settings, None
    if settings.search_trials <= 1:
        return train_one(settings), settings, None
    search = run_search(settings, settings.search_trials, settings.search_budget_s, train_one)
    return search.best, settings.model_copy(update=search.best_params), search


VAL_CROP_SEED = 7919  # added to the seed: validation crops come from other parks


def region_crop_spec(settings: TrainerSettings) -> CropSpec:
    """How the regions crops are cut: here (training, validation, calibration, clips) and
    by the release's agents."""
    return REGION_CROPS.model_copy(update={"destreak": settings.region_destreak})


def region_crops(settings: TrainerSettings, labels: Sequence[str], spec: InputSpec,
                 train: Sequence[ImageRecord], val: Sequence[ImageRecord]
                 ) -> tuple[CropSet, CropSet]:
    """The agent-shaped crops of the training and validation photos, with "other" crops."""
    share, per = settings.region_other_share, settings.region_crops_per_image
    other = list(labels).index(OTHER)

    def crops(records: Sequence[ImageRecord], seed: int) -> CropSet:
        # The share of clip-mined "other" crops is of the animal crops; a dataset's own
        # mined negatives (an other/ folder) come on top.
        animals = sum(r.label_index != other for r in records)
        return CropSet(records, other, spec, region_crop_spec(settings), per,
                       round(animals * per * share / (1 - share)), seed)

    return crops(train, settings.seed), crops(val, settings.seed + VAL_CROP_SEED)


@dataclass(frozen=True)
class CropLogits:
    """A model's logits of a crop set's items, and their labels."""

    logits: npt.NDArray[np.float32]
    labels: npt.NDArray[np.int64]


def val_crop_logits(settings: TrainerSettings, splits: Splits, model: OnnxModel) -> CropLogits:
    """The model's logits of the validation crops (``region_crops``)."""
    _, val = region_crops(settings, splits.labels, splits.spec, [], splits.val)
    logits = predict_crops(model, [val.image(i) for i in range(len(val))], splits.spec)
    return CropLogits(logits, np.array([r.label_index for r in val.records], np.int64))


def train_stage(ctx: RunContext) -> Trained:
    splits = ctx[Splits]
    outcome, settings, search = fit(ctx.settings, splits.labels, splits.spec, splits.train,
                                    splits.val, ctx.console, ctx.show_progress, ctx.on_epoch)
    path = ctx.out_path("checkpoint.pt")
    torch.save(
        {
            "state_dict": {k: v.cpu() for k, v in outcome.model.state_dict().items()},
            "labels": splits.labels,
            "width_mult": settings.width_mult,
            "input_size": settings.input_size,
            "arch": settings.arch,
            "dataset_version": ctx[Scanned].scan.version,
        },
        path,
    )
    return Trained(outcome, settings, search, path)


__all__ = ["CropLogits", "Trained", "fit", "region_crop_spec", "region_crops", "train_stage",
           "val_crop_logits"]
