"""Transfer learning for the pretrained Lite0: a linear probe, then an optional fine-tune.

The probe runs the frozen backbone once over the training and validation images
(and, with ``probe_flip``, the mirrored training images), caches the pooled
features and fits the linear head on them as an L2-regularised logistic
regression (full-batch L-BFGS), picking the L2 strength by validation accuracy.
On 2 CPU cores that costs one forward pass per image instead of one per epoch.
With ``finetune`` other than ``none`` the chosen parts of the network then train
end to end with augmentation (``train.train_model``) from the probe's head; the
fine-tuned weights are kept only if they beat the probe on validation. In regions mode
the fine-tune trains only the top on cached trunk activations of the photos and crops
(``top_tune``) and is judged on the validation crops.
With ``feature_cache_dir`` the probe's features persist across runs by image sha256
(``feature_cache``): a retraining computes only the images it has not seen.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable

import numpy as np
import torch
from rich.console import Console
from torch.nn import functional as F
from torch.utils.data import DataLoader

from .config import TrainerSettings
from .crop_set import CropSet
from .data import ImageDataset
from .feature_cache import FeatureCache, backbone_key
from .lite0 import Lite0, load_pretrained
from .train import EpochStats, TrainOutcome, _progress, resolve_device, train_model

log = logging.getLogger(__name__)
L2_GRID = (1e-4, 1e-3, 3e-3, 1e-2, 3e-2)


class _Flipped(torch.utils.data.Dataset[tuple[torch.Tensor, int]]):
    """The mirrored (left-right) images of a dataset, for the probe's cached features."""

    def __init__(self, base: ImageDataset) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x, y = self.base[i]
        return torch.flip(x, dims=(2,)), y


@torch.no_grad()
def extract_features(
    model: Lite0,
    dataset: torch.utils.data.Dataset[tuple[torch.Tensor, int]],
    batch_size: int,
    device: torch.device,
    num_workers: int = 0,
    on_batch: Callable[[int], None] | None = None,
    forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooled embeddings (N x 1280, CPU) and labels of ``dataset`` through the frozen backbone
    (or what ``forward``, e.g. ``Lite0.trunk``, makes of a batch)."""
    model.eval()
    forward = forward or model.embed
    feats: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    for x, y in DataLoader(dataset, batch_size=batch_size, num_workers=num_workers):
        x = x.to(device).contiguous(memory_format=torch.channels_last)
        feats.append(forward(x).float().cpu())
        labels.append(y)
        if on_batch is not None:
            on_batch(len(y))
    return torch.cat(feats), torch.cat(labels)


def cached_features(
    model: Lite0,
    dataset: torch.utils.data.Dataset[tuple[torch.Tensor, int]],
    base: ImageDataset | CropSet,
    view: str,
    cache: FeatureCache | None,
    batch_size: int,
    device: torch.device,
    num_workers: int = 0,
    on_batch: Callable[[int], None] | None = None,
    forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``extract_features`` of ``dataset`` (``base`` or a view of it, item for item), taking
    what ``cache`` holds and computing and storing only the rest. A crop set's items are
    keyed like images (``CropItem.sha256``) in the view of its recipe. The cache holds
    flat vectors: ``forward``'s outputs come back flattened per item."""
    if cache is None:
        x, y = extract_features(model, dataset, batch_size, device, num_workers, on_batch,
                                forward)
        return x.flatten(1), y
    images = [r.sha256 for r in base.records]
    have = cache.get(images, view)
    missing = [i for i, sha in enumerate(images) if sha not in have]
    if missing:
        x_new, _ = extract_features(model, torch.utils.data.Subset(dataset, missing),
                                    batch_size, device, num_workers, on_batch, forward)
        x_new = x_new.flatten(1)
        new = {images[i]: x_new[j].numpy() for j, i in enumerate(missing)}
        cache.put(new.items(), view)
        have.update(new)
    if on_batch is not None and len(images) > len(missing):
        on_batch(len(images) - len(missing))
    log.info("probe features (%s): %d cached, %d computed", view,
             len(images) - len(missing), len(missing))
    x = torch.from_numpy(np.stack([have[sha] for sha in images])) if images else torch.empty(0)
    return x, torch.tensor([r.label_index for r in base.records], dtype=torch.long)


def fit_linear(
    x: torch.Tensor, y: torch.Tensor, num_classes: int, l2: float, max_iter: int = 200
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression (weight, bias) with L2 on the weight, by L-BFGS.

    Runs on one thread: the ops are tiny, and on a busy machine torch's thread
    hand-offs made a fit 100x slower than the arithmetic.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _fit_linear(x, y, num_classes, l2, max_iter)
    finally:
        torch.set_num_threads(threads)


def _fit_linear(
    x: torch.Tensor, y: torch.Tensor, num_classes: int, l2: float, max_iter: int
) -> tuple[torch.Tensor, torch.Tensor]:
    weight = torch.zeros(num_classes, x.shape[1], requires_grad=True)
    bias = torch.zeros(num_classes, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weight, bias], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(x @ weight.T + bias, y) + l2 * weight.pow(2).sum()
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    optimizer.step(closure)  # type: ignore[no-untyped-call]
    return weight.detach(), bias.detach()


def _loss_accuracy(
    x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor
) -> tuple[float, float]:
    logits = x @ weight.T + bias
    return float(F.cross_entropy(logits, y)), float((logits.argmax(1) == y).float().mean())


def linear_probe(
    model: Lite0,
    train_set: ImageDataset,
    val_set: ImageDataset,
    settings: TrainerSettings,
    device: torch.device,
    console: Console,
    show_progress: bool,
    crops: tuple[CropSet, CropSet] | None = None,
) -> EpochStats:
    """Fit ``model.fc`` on cached frozen features; return the probe's figures as epoch 1.

    With ``crops`` (training, validation) the probe also learns from agent-shaped crops
    and the "other" class, and picks its L2 strength on the validation photos and crops.
    """
    t0 = time.perf_counter()
    # Features of the plain images: a shallow copy without augmentation that shares the
    # decoded-image cache (and its byte count, below) with the fine-tune's training set.
    plain = copy.copy(train_set)
    plain.augment = False
    parts: list[torch.utils.data.Dataset[tuple[torch.Tensor, int]]] = [plain]
    if settings.probe_flip:
        parts.append(_Flipped(plain))
    total = len(plain) * len(parts) + len(val_set) + sum(map(len, crops or ()))
    cache = None
    if settings.feature_cache_dir is not None:
        cache = FeatureCache(settings.feature_cache_dir,
                             backbone_key(model, train_set.spec.model_dump()))
    try:
        with _progress(console, show_progress) as progress:
            task = progress.add_task("probe features", total=total, info="frozen Lite0")
            step = lambda n: progress.update(task, advance=n)  # noqa: E731
            batch, workers = settings.batch_size * 2, settings.num_workers
            extracted = [
                cached_features(model, p, plain, view, cache, batch, device, workers, step)
                for p, view in zip(parts, ("plain", "flip"), strict=False)
            ]
            x_val, y_val = cached_features(model, val_set, val_set, "plain", cache, batch,
                                           device, workers, step)
            if crops is not None:
                train_crops, val_crops = (
                    cached_features(model, c, c, f"crop-{c.recipe}", cache, batch, device,
                                    workers, step) for c in crops)
                extracted.append(train_crops)
                x_val, y_val = torch.cat([x_val, val_crops[0]]), torch.cat([y_val, val_crops[1]])
    finally:
        if cache is not None:
            cache.close()
    train_set._cached_bytes = plain._cached_bytes
    extract_s = time.perf_counter() - t0
    x_train = torch.cat([x for x, _ in extracted])
    y_train = torch.cat([y for _, y in extracted])
    best: tuple[tuple[float, float], float, torch.Tensor, torch.Tensor] | None = None
    for l2 in L2_GRID:
        weight, bias = fit_linear(x_train, y_train, model.num_classes, l2)
        val_loss, val_acc = _loss_accuracy(x_val, y_val, weight, bias)
        log.info("probe l2 %g: val accuracy %.4f loss %.4f", l2, val_acc, val_loss)
        score = (val_acc, -val_loss)
        if best is None or score > best[0]:
            best = (score, l2, weight, bias)
    assert best is not None
    (val_acc, neg_val_loss), l2, weight, bias = best
    with torch.no_grad():
        model.fc.weight.copy_(weight.to(model.fc.weight.device))
        model.fc.bias.copy_(bias.to(model.fc.bias.device))
    train_loss, train_acc = _loss_accuracy(x_train, y_train, weight, bias)
    console.print(
        f"linear probe: {len(x_train)} cached training features, l2 {l2:g}, "
        f"val accuracy {val_acc:.4f} ({time.perf_counter() - t0:.0f} s)", markup=False,
    )
    return EpochStats(
        epoch=1, train_loss=train_loss, train_accuracy=train_acc, val_loss=-neg_val_loss,
        val_accuracy=val_acc, lr=l2, seconds=time.perf_counter() - t0, images=len(x_train),
        images_per_s=len(x_train) / max(extract_s, 1e-9),
    )


def train_lite0(
    num_classes: int,
    train_set: ImageDataset,
    val_set: ImageDataset,
    settings: TrainerSettings,
    console: Console,
    show_progress: bool = True,
    on_epoch: Callable[[EpochStats], None] | None = None,
    crops: tuple[CropSet, CropSet] | None = None,
) -> TrainOutcome:
    """Pretrained Lite0 -> linear probe -> optional fine-tune; the best by validation.
    ``crops``: see ``linear_probe``; with them the fine-tune trains the top on cached
    activations of the photos and crops (``top_tune``), else end to end on the photos."""
    started = time.perf_counter()
    device = resolve_device(settings.device)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    model = load_pretrained(Lite0(num_classes, settings.input_size))
    model.to(device, memory_format=torch.channels_last)  # type: ignore[call-overload]
    model.set_trainable("none")
    probe = linear_probe(model, train_set, val_set, settings, device, console, show_progress,
                         crops)
    if on_epoch is not None:
        on_epoch(probe)
    outcome = TrainOutcome(model=model, device=str(device), best_epoch=1,
                           best_val_accuracy=probe.val_accuracy, history=[probe])
    if settings.finetune != "none" and crops is not None:
        from .top_tune import tune_top  # it builds on this module's cached_features

        tuned_top = tune_top(
            model, train_set, val_set, crops, settings, device, console, show_progress,
            None if on_epoch is None else lambda e: on_epoch(_shift_epoch(e)))
        outcome.history += [_shift_epoch(e) for e in tuned_top.history]
        outcome.fine_tune = tuned_top.summary()
        if tuned_top.kept:
            outcome.best_epoch = 1 + tuned_top.best_epoch
            outcome.best_val_accuracy = tuned_top.val_accuracy
    elif settings.finetune != "none":
        probe_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.set_trainable(settings.finetune)
        tuned = train_model(
            model, train_set, val_set,
            settings.model_copy(update={
                "epochs": settings.finetune_epochs, "lr": settings.finetune_lr,
                "patience": settings.finetune_epochs,
            }),
            console=console, show_progress=show_progress,
            on_epoch=None if on_epoch is None else lambda e: on_epoch(_shift_epoch(e)),
        )
        outcome.history += [_shift_epoch(e) for e in tuned.history]
        if tuned.best_val_accuracy > probe.val_accuracy:
            outcome.best_epoch = tuned.best_epoch + 1
            outcome.best_val_accuracy = tuned.best_val_accuracy
        else:  # the fine-tune did not help: ship the probe
            log.info("fine-tune val accuracy %.4f <= probe %.4f: keeping the probe",
                     tuned.best_val_accuracy, probe.val_accuracy)
            model.load_state_dict(probe_state)
    model.to("cpu", memory_format=torch.contiguous_format)  # type: ignore[call-overload]
    model.eval()
    outcome.seconds = time.perf_counter() - started
    return outcome


def _shift_epoch(e: EpochStats) -> EpochStats:
    """Fine-tune epochs are numbered after the probe (epoch 1)."""
    from dataclasses import replace

    return replace(e, epoch=e.epoch + 1)


__all__ = ["L2_GRID", "cached_features", "extract_features", "fit_linear", "linear_probe",
           "train_lite0"]
