"""Regions mode's fine-tune: Lite0's top trained on cached trunk activations of crops.

The linear probe reads whole photos well and agent-shaped crops (small, upscaled, cut
out, dark, wet) far less well: a linear head cannot adapt the frozen features to them.
Training the last blocks end to end would cost a backbone pass per crop and epoch; on 2
shared CPU cores that is hours. Instead the frozen trunk (the stem and the blocks before
``TOP_START[finetune]``) runs once per photo and crop, its activations are cached like
the probe's features (``feature_cache``, by image or crop sha256, in a table of their
own), and only the top (those blocks, the head conv and ``fc``) trains on them, from the
probe's head, on the training photos and crops with the "other" class. There is no
augmentation beyond the crops' own: each crop already is a random agent-shaped view.
The tuned weights are kept only if they read the validation crops better than the probe.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from rich.console import Console
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .config import TrainerSettings
from .crop_set import CropSet
from .data import ImageDataset
from .feature_cache import FeatureCache, backbone_key
from .finetune import cached_features
from .lite0 import TOP_START, Lite0
from .train import EpochStats, SizedDataset, _progress, evaluate_loss_accuracy, train_model

log = logging.getLogger(__name__)

Batch = tuple[torch.Tensor, torch.Tensor]


class _Top(nn.Module):
    """The trained part of ``model`` as a network of its own: trunk activation -> logits."""

    def __init__(self, model: Lite0, start: int) -> None:
        super().__init__()
        self.model, self.start = model, start

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.model.top_embed(x, self.start)
        return self.model.fc(self.model.dropout(embedding)), embedding


class _Activations(SizedDataset):
    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.x[i], int(self.y[i])


@dataclass
class TopTune:
    """What the fine-tune did and whether its weights were kept."""

    kept: bool
    probe_crop_accuracy: float  # the validation crops, the probe's weights
    tuned_crop_accuracy: float  # the same crops, the fine-tune's best epoch
    val_accuracy: float  # validation photos and crops (the probe's figure), weights kept
    best_epoch: int  # of the fine-tune
    activation_seconds: float  # the trunk's pass (and the crops' rendering) or the cache
    train_seconds: float
    history: list[EpochStats] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        return {k: round(v, 4) if isinstance(v, float) else v
                for k, v in self.__dict__.items() if k != "history"}


def trunk_activations(
    model: Lite0,
    start: int,
    sets: list[tuple[Dataset[tuple[torch.Tensor, int]], ImageDataset | CropSet, str]],
    settings: TrainerSettings,
    device: torch.device,
    on_batch: Callable[[int], None] | None = None,
) -> list[Batch]:
    """``model.trunk(x, start)`` of every item of each ``(dataset, base, view)`` (see
    ``cached_features``), from ``feature_cache_dir`` when it holds them."""
    cache = None
    if settings.feature_cache_dir is not None:
        spec = sets[0][1].spec.model_dump()
        cache = FeatureCache(settings.feature_cache_dir,
                             f"{backbone_key(model, spec)}_top{start}")
    side = settings.input_size
    with torch.no_grad():
        shape = model.eval().trunk(torch.zeros(1, 3, side, side, device=device), start).shape[1:]
    try:
        out = []
        for dataset, base, view in sets:
            x, y = cached_features(model, dataset, base, view, cache, settings.batch_size * 2,
                                   device, settings.num_workers, on_batch,
                                   lambda b: model.trunk(b, start))
            out.append((x.reshape(-1, *shape), y))
        return out
    finally:
        if cache is not None:
            cache.close()


def train_top(
    model: Lite0,
    start: int,
    train: Batch,
    val_crops: Batch,
    val_all: Batch,
    settings: TrainerSettings,
    device: torch.device,
    console: Console,
    show_progress: bool,
    on_epoch: Callable[[EpochStats], None] | None = None,
) -> TopTune:
    """Train ``model``'s top (``settings.finetune``, from ``blocks[start]``) on trunk
    activations ``train``, in place; keep its best epoch only if it reads ``val_crops``
    better than the weights it started from, else restore those. ``val_all``: the
    validation set the probe reports (photos and crops), scored with the kept weights."""
    top = _Top(model, start)
    val_loader = DataLoader(_Activations(*val_crops), batch_size=settings.batch_size * 2)
    _, probe_acc = evaluate_loss_accuracy(top, val_loader, device)
    probe_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.set_trainable(settings.finetune)
    tuned = train_model(
        top, _Activations(*train), _Activations(*val_crops),
        settings.model_copy(update={
            "epochs": settings.finetune_epochs, "lr": settings.finetune_lr,
            "patience": settings.finetune_epochs, "num_workers": 0,
        }),
        console=console, show_progress=show_progress, on_epoch=on_epoch,
    )
    # Strictly better: a tie (a few crops on a small set) is no reason to ship new weights.
    kept = tuned.best_val_accuracy > probe_acc
    if not kept:
        model.load_state_dict(probe_state)
    model.set_trainable("none")
    _, val_acc = evaluate_loss_accuracy(
        top, DataLoader(_Activations(*val_all), batch_size=settings.batch_size * 2), device)
    return TopTune(kept, probe_acc, tuned.best_val_accuracy, val_acc, tuned.best_epoch,
                   0.0, tuned.seconds, tuned.history)


def tune_top(
    model: Lite0,
    train_set: ImageDataset,
    val_set: ImageDataset,
    crops: tuple[CropSet, CropSet],
    settings: TrainerSettings,
    device: torch.device,
    console: Console,
    show_progress: bool,
    on_epoch: Callable[[EpochStats], None] | None = None,
) -> TopTune:
    """Fine-tune ``model``'s top (``settings.finetune``) from its probe head, in place; keep
    the tuned weights only if they beat the probe on the validation crops."""
    start = TOP_START[settings.finetune]
    t0 = time.perf_counter()
    plain = copy.copy(train_set)  # the cached activations are of the plain photos
    plain.augment = False
    train_crops, val_crops = crops
    sets: list[tuple[Dataset[tuple[torch.Tensor, int]], ImageDataset | CropSet, str]] = [
        (plain, plain, "plain"), (train_crops, train_crops, f"crop-{train_crops.recipe}"),
        (val_set, val_set, "plain"), (val_crops, val_crops, f"crop-{val_crops.recipe}"),
    ]
    with _progress(console, show_progress) as progress:
        task = progress.add_task("trunk activations", total=sum(len(s[1]) for s in sets),
                                 info=f"frozen Lite0 to block {start}")
        (xp, yp), (xc, yc), (xvp, yvp), (xvc, yvc) = trunk_activations(
            model, start, sets, settings, device,
            lambda n: progress.update(task, advance=n))
    result = train_top(model, start, (torch.cat([xp, xc]), torch.cat([yp, yc])), (xvc, yvc),
                       (torch.cat([xvp, xvc]), torch.cat([yvp, yvc])), settings, device,
                       console, show_progress, on_epoch)
    result.activation_seconds = time.perf_counter() - t0 - result.train_seconds
    console.print(
        f"fine-tune ({settings.finetune}, from block {start}): validation crops "
        f"{result.tuned_crop_accuracy:.4f} against the probe's "
        f"{result.probe_crop_accuracy:.4f}: {'kept' if result.kept else 'the probe kept'} "
        f"(activations {result.activation_seconds:.0f} s, training "
        f"{result.train_seconds:.0f} s)", markup=False,
    )
    return result


__all__ = ["TopTune", "train_top", "trunk_activations", "tune_top"]
